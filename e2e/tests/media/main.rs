//! Upload → transcode → package → edge, for real: the package's playlists, segments and bytes
//! (`package`), a transcoder killed mid-job (`failover`), and two origin replicas behind one
//! balancer (`scale_out`).

mod failover;
mod package;
mod scale_out;
