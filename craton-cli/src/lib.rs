//! craton-cli: will hold `craton-hsm`, the administration command line.
//!
//! Not built yet: no binary is produced until the commands do real work.
