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
