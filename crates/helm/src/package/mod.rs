//! What source-controller needs from charts besides rendering: repository indexes
//! ([`index`]), chart versions among OCI registry tags ([`oci`]), and charts read from archives or directories, changed (version, default
//! values) and packaged again as `helm package` writes them ([`chart`]). Pure: bytes in,
//! bytes out (directories are read, never written).

pub mod chart;
pub mod index;
pub mod oci;
