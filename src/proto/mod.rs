//! Wire formats: pure encoders and decoders, no tasks and no I/O.

pub mod frame_guard;
pub mod frame_header;
pub mod headers;
pub mod qpack_fields;
pub mod request_rules;
pub mod safe_method;
pub mod varint;
pub mod wt_draft;
pub mod wt_protocols;
pub mod wt_settings;
pub mod wt_token;
pub mod wt_wire;
