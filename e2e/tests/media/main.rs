//! Upload → transcode → package → edge, for real: the package's playlists, segments and bytes
//! (`package`), its poster, storyboard and I-frame playlists (`artwork`), captions added
//! afterwards (`captions`), audio-only and multi-language audio (`audio`), a transcoder killed mid-job (`failover`), and two origin replicas behind one
//! balancer (`scale_out`).

mod artwork;
mod audio;
mod captions;
mod failover;
mod package;
mod scale_out;
