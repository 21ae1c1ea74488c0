//! Upload → transcode → package → edge, for real: the package's playlists, segments and bytes
//! (`package`), and a transcoder killed mid-job (`failover`).

mod failover;
mod package;
