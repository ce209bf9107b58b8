//! Logging through the host (`capabilities.log = true`). Lines carry the plugin's name.

use crate::bindings::seam::plugin::log as host;
pub use crate::bindings::seam::plugin::log::Level;

/// Log one line at `level`.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Log at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Log at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Log at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Log at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}
