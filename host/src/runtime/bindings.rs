//! The host's one `bindgen!`: every import the host provides and every export it calls.
//!
//! Plugins implement the worlds `connector` or `router` from `wit/`. The host needs the
//! union of both (the shared imports, and both `channel` and `routing` exports), which is
//! the inline world below; for a given component only the matching export is looked up
//! (see `Exports` in `plugin.rs`), so a connector never has to export `routing`.

wasmtime::component::bindgen!({
    path: "../wit",
    inline: "
        package seam:host;

        world host {
            import seam:plugin/types@0.1.0;
            import seam:plugin/log@0.1.0;
            import seam:plugin/kv@0.1.0;
            import seam:plugin/config@0.1.0;
            import seam:plugin/smtp@0.1.0;
            export seam:plugin/channel@0.1.0;
            export seam:plugin/routing@0.1.0;
        }
    ",
    world: "seam:host/host",
    // Talking to a relay waits on the network: the one async import.
    imports: { "seam:plugin/smtp.send": async },
    exports: { default: async },
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use self::exports::seam::plugin::channel;
pub use self::exports::seam::plugin::routing;
pub use self::seam::plugin::types;

/// Flag names as in the WIT, for JSON.
const FEATURE_NAMES: [(channel::ChannelFeatures, &str); 7] = [
    (channel::ChannelFeatures::TEXT, "text"),
    (channel::ChannelFeatures::MEDIA, "media"),
    (channel::ChannelFeatures::TEMPLATES, "templates"),
    (channel::ChannelFeatures::RICH, "rich"),
    (channel::ChannelFeatures::POLL, "poll"),
    (channel::ChannelFeatures::DELIVERY_STATUS, "delivery-status"),
    (channel::ChannelFeatures::READ_STATUS, "read-status"),
];

// `flags` types get no derives from bindgen; they are a list of names in JSON.
impl serde::Serialize for channel::ChannelFeatures {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(FEATURE_NAMES.iter().filter(|(f, _)| self.contains(*f)).map(|(_, n)| n))
    }
}

impl<'de> serde::Deserialize<'de> for channel::ChannelFeatures {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        let mut flags = channel::ChannelFeatures::empty();
        for name in names {
            let (flag, _) = FEATURE_NAMES
                .iter()
                .find(|(_, n)| *n == name)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown channel feature `{name}`")))?;
            flags |= *flag;
        }
        Ok(flags)
    }
}

impl types::Host for super::state::HostState {}
