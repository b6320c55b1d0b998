use super::*;

#[test]
fn a_user_of_an_unknown_tenant_is_named_in_the_error() {
    let config = ProxyConfig {
        backends: vec!["127.0.0.1:6379".into()],
        users: vec![UserConfig {
            name: "app".into(),
            password: Some("s1".into()),
            tenant: Some("shop".into()),
            ..UserConfig::default()
        }],
        ..ProxyConfig::default()
    };
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "tenants: a user names tenant \"shop\", which is not configured"
    );
}

#[test]
fn dedicated_tenants_name_a_backend_group_that_exists() {
    use crate::tenants::{Isolation, TenantConfig};
    let mut config = ProxyConfig {
        backends: vec!["127.0.0.1:6379".into()],
        tenants: vec![TenantConfig {
            name: "billing".into(),
            isolation: Isolation::Dedicated,
            ..TenantConfig::default()
        }],
        ..ProxyConfig::default()
    };
    assert!(config
        .validate()
        .unwrap_err()
        .to_string()
        .contains("needs `backend`"));
    config.tenants[0].backend = Some("legacy".into());
    assert!(config
        .validate()
        .unwrap_err()
        .to_string()
        .contains("not configured"));
    config.backend_groups.push(BackendGroupConfig {
        name: "legacy".into(),
        seeds: vec!["127.0.0.1:6380".into()],
        mode: ModeSetting::Auto,
        ..BackendGroupConfig::default()
    });
    config.validate().unwrap();
    assert_eq!(config.group_of(&config.tenants[0]), 1);
    config.backend_groups[0].seeds = vec!["nonsense".into()];
    assert_names_the_address(&config);
}

fn assert_names_the_address(config: &ProxyConfig) {
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("\"nonsense\""), "{error}");
}

#[test]
fn defaults_need_only_a_backend() {
    let mut config = ProxyConfig::default();
    assert!(matches!(config.validate(), Err(ConfigError::NoBackend)));
    config.backends.push("127.0.0.1:6379".into());
    config.validate().unwrap();
    config.backends.push("nonsense".into());
    assert_names_the_address(&config);
}

#[test]
fn threads_are_bounded() {
    let mut config = ProxyConfig {
        backends: vec!["127.0.0.1:6379".into()],
        threads: MAX_THREADS,
        ..ProxyConfig::default()
    };
    config.validate().unwrap();
    config.threads = MAX_THREADS + 1;
    assert!(config.validate().unwrap_err().to_string().contains("threads"));
}

#[test]
fn a_bad_audit_setting_is_named() {
    let with = |tweak: fn(&mut audit::AuditConfig)| {
        let mut config = ProxyConfig {
            backends: vec!["127.0.0.1:6379".into()],
            ..ProxyConfig::default()
        };
        tweak(&mut config.audit);
        config.validate().map_err(|error| error.to_string())
    };
    assert_eq!(with(|_| {}), Ok(()));
    assert_eq!(
        with(|audit| audit.commands = "+@write +@nosuch".into()),
        Err("audit: commands: Error in ACL SETUSER modifier '+@nosuch': Unknown command or category name in ACL".into())
    );
    assert_eq!(
        with(|audit| audit.read_sample = 1.5),
        Err("audit: read_sample must be between 0.0 and 1.0".into())
    );
    assert_eq!(
        with(|audit| audit.queue_records = 0),
        Err("audit: queue_records must be greater than 0".into())
    );
    assert_eq!(
        with(|audit| audit.networks_exclude = vec!["10.0.0.0/33".into()]),
        Err("audit: \"10.0.0.0/33\" is not a network (10.0.0.0/8) or an address".into())
    );
}
