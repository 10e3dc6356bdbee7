//! Files workers produce: artifact paths, signed links and ranges
//! (`artifacts`), and Supabase Storage's REST API as a backend (`supabase`).

pub mod artifacts;
pub mod supabase;
