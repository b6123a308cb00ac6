//! No input makes the protocol and configuration parsers panic: arbitrary JSON, and valid
//! configurations with arbitrary values planted at every known key, go through every parser a
//! plugin runs before it touches the system. (Only parsers: nothing here creates files or links.)

use cni_reference_plugins::bridge::config::BridgeConfig;
use cni_reference_plugins::cni::args::CniArgs;
use cni_reference_plugins::cni::dispatch::{dispatch, Plugin, Request};
use cni_reference_plugins::cni::result::{CniResult, IpConfig};
use cni_reference_plugins::cni::version::SpecVersion;
use cni_reference_plugins::cni::CniError;
use cni_reference_plugins::cni::NetConf;
use cni_reference_plugins::host_local::config::{IpamConfig, Needs};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("10.0.0.0/24"),
            Just("10.0.0.5"),
            Just("::/0"),
            Just("2001:db8::/64"),
            Just("0.0.0.0/0"),
            Just("1.1.0"),
            Just("0.2.0"),
            Just("host-local"),
            Just("/32"),
            Just("255.255.255.255/0"),
            Just("::ffff:1.2.3.4/120"),
            Just("aa:bb:cc:dd:ee:ff"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-zA-Z]{1,8}",
                        prop::sample::select(vec![
                            "subnet",
                            "rangeStart",
                            "rangeEnd",
                            "gateway",
                            "ranges",
                            "routes",
                            "dst",
                            "gw",
                            "ips",
                            "ipRanges",
                            "mac",
                            "cni",
                            "dataDir",
                            "type",
                            "mtu",
                            "vlan",
                            "vlanTrunk",
                            "minID",
                            "maxID",
                            "id",
                            "interfaces",
                            "address",
                            "interface",
                            "ip4",
                            "ip6",
                            "ip",
                            "dns",
                            "nameservers",
                            "cniVersion",
                            "containerID",
                            "ifname",
                        ])
                        .prop_map(str::to_string)
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

const TOP_KEYS: &[&str] = &[
    "cniVersion",
    "name",
    "type",
    "ipam",
    "dns",
    "runtimeConfig",
    "args",
    "prevResult",
    "cni.dev/valid-attachments",
    "cni.dev/attachments",
    "bridge",
    "isGateway",
    "isDefaultGateway",
    "forceAddress",
    "ipMasq",
    "ipMasqBackend",
    "mtu",
    "hairpinMode",
    "promiscMode",
    "vlan",
    "vlanTrunk",
    "preserveDefaultVlan",
    "macspoofchk",
    "enabledad",
    "disableContainerInterface",
    "portIsolation",
];

fn base() -> Value {
    json!({
        "cniVersion": "1.1.0", "name": "net", "type": "bridge", "isGateway": true,
        "ipam": {"type": "host-local", "dataDir": "/nonexistent", "ranges": [[{"subnet": "10.0.0.0/24"}]],
                 "routes": [{"dst": "0.0.0.0/0"}]},
        "runtimeConfig": {"ips": ["10.0.0.9"], "ipRanges": [[{"subnet": "10.1.0.0/24"}]], "mac": "0a:00:00:00:00:01"},
        "args": {"cni": {"ips": ["10.0.0.8"], "mac": "0a:00:00:00:00:02"}},
        "prevResult": {"cniVersion": "1.1.0", "ips": [{"address": "10.0.0.2/24"}]}
    })
}

/// Every parser a plugin runs on its input, before touching the system.
fn parse_everything(config: Value, cni_args: &str) {
    if let Value::Object(obj) = config {
        if let Ok(conf) = NetConf::parse(obj) {
            let _ = IpamConfig::load(&conf, cni_args, Needs::Allocation);
            let _ = IpamConfig::load(&conf, cni_args, Needs::StoreOnly);
            let _ = BridgeConfig::load(&conf, cni_args, true);
            if let Some(prev) = &conf.prev_result {
                if let Ok(r) = CniResult::from_json(prev, &conf.cni_version) {
                    for v in ["0.1.0", "0.2.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", "7", ""] {
                        let _ = r.to_json(v);
                    }
                }
            }
        }
    }
}

/// A plugin that touches nothing: the dispatcher is what is under test.
struct Inert;

impl Plugin for Inert {
    fn about(&self) -> String {
        "inert".into()
    }
    fn add(&self, _: &Request) -> Result<CniResult, CniError> {
        Ok(CniResult {
            ips: vec![IpConfig {
                interface: None,
                address: "10.0.0.2/24".parse().unwrap(),
                gateway: None,
            }],
            ..CniResult::default()
        })
    }
    fn del(&self, _: &Request) -> Result<(), CniError> {
        Ok(())
    }
    fn check(&self, _: &Request) -> Result<(), CniError> {
        Ok(())
    }
    fn gc(&self, _: &Request) -> Result<(), CniError> {
        Ok(())
    }
    fn status(&self, _: &Request) -> Result<(), CniError> {
        Ok(())
    }
}

fn arb_env() -> impl Strategy<Value = Vec<(String, String)>> {
    let names = prop::sample::select(vec![
        "CNI_COMMAND",
        "CNI_CONTAINERID",
        "CNI_NETNS",
        "CNI_IFNAME",
        "CNI_ARGS",
        "CNI_PATH",
        "CNI_NETNS_OVERRIDE",
    ]);
    let values = prop_oneof![
        prop::sample::select(vec!["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION", "add", ""])
            .prop_map(str::to_string),
        "[ -~]{0,20}",
        Just("/proc/self/ns/net".to_string()),
    ];
    prop::collection::vec((names.prop_map(str::to_string), values), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(value in arb_json(), args in "[ -~]{0,20}") {
        parse_everything(value.clone(), &args);
        let _ = CniResult::from_json(&value, "1.1.0");
        let _ = CniResult::from_json(&value, "0.2.0");
        let _ = CniArgs::parse(&args, &["IP", "MAC"]);
    }

    #[test]
    fn any_value_at_any_known_key_never_panics(
        key in prop::sample::select(TOP_KEYS.to_vec()),
        nested in prop::sample::select(vec!["", "ranges", "subnet", "routes", "dataDir", "ips", "ipRanges", "mac", "cni"]),
        value in arb_json(),
    ) {
        let mut config = base();
        if nested.is_empty() {
            config[key] = value;
        } else {
            for section in ["ipam", "runtimeConfig", "args", "prevResult"] {
                let mut c = config.clone();
                c[section][nested] = value.clone();
                parse_everything(c, "IgnoreUnknown=1;IP=10.0.0.7");
            }
            if config[key].is_object() {
                config[key][nested] = value;
            }
        }
        parse_everything(config, "");
    }

    #[test]
    fn dispatcher_never_panics_and_answers_in_json(
        env in arb_env(),
        stdin in prop_oneof![
            arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            prop::collection::vec(any::<u8>(), 0..64),
            arb_json().prop_map(|v| {
                let mut c = json!({"cniVersion": "1.1.0", "name": "n"});
                c["x"] = v;
                serde_json::to_vec(&c).unwrap()
            }),
        ],
    ) {
        let lookup = |k: &str| env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let mut out = Vec::new();
        let mut err = Vec::new();
        let input = stdin.clone();
        let status = dispatch(&Inert, &lookup, &mut |_| Ok(input.clone()), &mut out, &mut err);
        let text = String::from_utf8(out).unwrap();
        if status == 0 {
            // Success prints nothing, a result or the VERSION answer: always JSON when present.
            if !text.trim().is_empty() {
                prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "{text}");
            }
        } else {
            let e: Value = serde_json::from_str(&text).unwrap();
            prop_assert!(e["code"].is_u64() && e["msg"].is_string(), "{text}");
        }
    }

    #[test]
    fn version_strings_never_panic(text in "[0-9.a-z]{0,12}") {
        let _ = SpecVersion::parse(&text);
    }
}
