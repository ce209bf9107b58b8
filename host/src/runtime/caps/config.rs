//! `seam:plugin/config`: a plugin reads only the keys its manifest declares; secrets only
//! through `secret`, plain values only through `get`.

use crate::runtime::bindings::seam::plugin::config::Host;
use crate::runtime::state::HostState;

impl Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.env.config.plain.get(&key).cloned()
    }

    fn secret(&mut self, key: String) -> Option<String> {
        self.env.config.secrets.get(&key).cloned()
    }
}
