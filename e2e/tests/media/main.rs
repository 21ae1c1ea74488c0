//! Upload → transcode → package → edge, for real: the package's playlists, segments and bytes
//! (`package`), its poster, storyboard and I-frame playlists (`artwork`), a transcoder killed mid-job (`failover`), and two origin replicas behind one
//! balancer (`scale_out`).

mod artwork;
mod failover;
mod package;
mod scale_out;
