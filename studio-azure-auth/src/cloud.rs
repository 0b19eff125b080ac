//! Azure clouds: where to sign in, where Resource Manager and Microsoft Graph live, and the
//! DNS suffix of container registries.
//!
//! Three clouds are built in, named as `az cloud list` names them. Every endpoint can be
//! overridden from the environment with the variables the Azure SDKs use, which is also how
//! a pipeline points the toolkit at a private endpoint or a test double:
//!
//! | variable | replaces |
//! |---|---|
//! | `AZURE_AUTHORITY_HOST` | [`Cloud::authority_host`] |
//! | `AZURE_RESOURCE_MANAGER_ENDPOINT` | [`Cloud::resource_manager`] |
//! | `MICROSOFT_GRAPH_ENDPOINT` | [`Cloud::graph`] |
//! | `AZURE_RESOURCE_MANAGER_AUDIENCE` | [`Cloud::resource_manager_audience`] |
//! | `MICROSOFT_GRAPH_AUDIENCE` | [`Cloud::graph_audience`] |
//!
//! Every endpoint must use `https`: tokens are never sent in clear text. The audiences matter
//! when an endpoint is a private front (or a test double) for a service whose tokens are issued
//! for its public name: the endpoint moves, the token audience (and so the scope asked for,
//! [`Cloud::resource_manager_scope`], [`Cloud::graph_scope`]) stays.
//!
//! ```
//! use studio_azure_auth::cloud::Cloud;
//!
//! let cloud = Cloud::named("AzureChinaCloud")?;
//! assert_eq!(cloud.resource_manager.as_str(), "https://management.chinacloudapi.cn/");
//! assert_eq!(cloud.registry_login_server("myregistry"), "myregistry.azurecr.cn");
//! # Ok::<(), studio_azure_auth::Error>(())
//! ```

use url::Url;

use crate::Error;

/// The endpoints of one Azure cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cloud {
    /// The cloud's name as `az cloud list` shows it, e.g. `AzureCloud`.
    pub name: String,
    /// The Entra ID authority host, e.g. `https://login.microsoftonline.com/`.
    pub authority_host: Url,
    /// The Azure Resource Manager endpoint, e.g. `https://management.azure.com/`.
    pub resource_manager: Url,
    /// The Microsoft Graph endpoint, e.g. `https://graph.microsoft.com/`.
    pub graph: Url,
    /// The DNS suffix of container registries, e.g. `azurecr.io`.
    pub acr_suffix: String,
    /// The token audience of ACR's data plane, e.g. `https://containerregistry.azure.net`.
    pub acr_audience: String,
    /// The token audience of Resource Manager when it is not [`Cloud::resource_manager`]
    /// (`AZURE_RESOURCE_MANAGER_AUDIENCE`), e.g. `https://management.azure.com`.
    pub resource_manager_audience: Option<String>,
    /// The token audience of Microsoft Graph when it is not [`Cloud::graph`]
    /// (`MICROSOFT_GRAPH_AUDIENCE`), e.g. `https://graph.microsoft.com`.
    pub graph_audience: Option<String>,
}

/// The names of the built-in clouds, in the order `az cloud list` prints them.
pub const CLOUD_NAMES: [&str; 3] = ["AzureCloud", "AzureChinaCloud", "AzureUSGovernment"];

impl Cloud {
    /// The public Azure cloud.
    pub fn azure_public() -> Self {
        Self::builtin(
            "AzureCloud",
            "https://login.microsoftonline.com/",
            "https://management.azure.com/",
            "https://graph.microsoft.com/",
            "azurecr.io",
            "https://containerregistry.azure.net",
        )
    }

    /// Azure operated by 21Vianet in China.
    pub fn azure_china() -> Self {
        Self::builtin(
            "AzureChinaCloud",
            "https://login.chinacloudapi.cn/",
            "https://management.chinacloudapi.cn/",
            "https://microsoftgraph.chinacloudapi.cn/",
            "azurecr.cn",
            "https://containerregistry.azure.cn",
        )
    }

    /// Azure Government in the United States.
    pub fn azure_us_government() -> Self {
        Self::builtin(
            "AzureUSGovernment",
            "https://login.microsoftonline.us/",
            "https://management.usgovcloudapi.net/",
            "https://graph.microsoft.us/",
            "azurecr.us",
            "https://containerregistry.azure.us",
        )
    }

    fn builtin(
        name: &str,
        authority: &str,
        arm: &str,
        graph: &str,
        acr_suffix: &str,
        acr_audience: &str,
    ) -> Self {
        // These literals are valid URLs; a test parses every one of them.
        let parse = |s: &str| Url::parse(s).unwrap_or_else(|_| unreachable!("built-in URL {s}"));
        Self {
            name: name.to_owned(),
            authority_host: parse(authority),
            resource_manager: parse(arm),
            graph: parse(graph),
            acr_suffix: acr_suffix.to_owned(),
            acr_audience: acr_audience.to_owned(),
            resource_manager_audience: None,
            graph_audience: None,
        }
    }

    /// A built-in cloud by name (case-insensitive), without environment overrides.
    pub fn named(name: &str) -> Result<Self, Error> {
        let cloud = match name.to_ascii_lowercase().as_str() {
            "azurecloud" => Self::azure_public(),
            "azurechinacloud" => Self::azure_china(),
            "azureusgovernment" => Self::azure_us_government(),
            _ => {
                return Err(Error::UnknownCloud {
                    name: name.to_owned(),
                    known: CLOUD_NAMES.join(", "),
                });
            }
        };
        Ok(cloud)
    }

    /// The named cloud (or `AzureCloud` when `name` is `None`) with the environment's
    /// endpoint overrides applied. See the module documentation for the variables.
    pub fn from_env(name: Option<&str>) -> Result<Self, Error> {
        let cloud = Self::named(name.unwrap_or("AzureCloud"))?;
        cloud.with_overrides(|var| std::env::var(var).ok())
    }

    /// Applies endpoint overrides looked up by variable name through `lookup`.
    ///
    /// ```
    /// use studio_azure_auth::cloud::Cloud;
    ///
    /// let cloud = Cloud::azure_public().with_overrides(|var| {
    ///     (var == "AZURE_RESOURCE_MANAGER_ENDPOINT").then(|| "https://127.0.0.1:8443".to_owned())
    /// })?;
    /// assert_eq!(cloud.resource_manager.as_str(), "https://127.0.0.1:8443/");
    /// assert!(Cloud::azure_public().with_overrides(|_| Some("http://example.com".into())).is_err());
    /// # Ok::<(), studio_azure_auth::Error>(())
    /// ```
    pub fn with_overrides(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        for (var, slot) in [
            ("AZURE_AUTHORITY_HOST", &mut self.authority_host),
            (
                "AZURE_RESOURCE_MANAGER_ENDPOINT",
                &mut self.resource_manager,
            ),
            ("MICROSOFT_GRAPH_ENDPOINT", &mut self.graph),
        ] {
            if let Some(value) = lookup(var).filter(|v| !v.trim().is_empty()) {
                *slot = https_endpoint(var, value.trim())?;
            }
        }
        for (var, slot) in [
            (
                "AZURE_RESOURCE_MANAGER_AUDIENCE",
                &mut self.resource_manager_audience,
            ),
            ("MICROSOFT_GRAPH_AUDIENCE", &mut self.graph_audience),
        ] {
            if let Some(value) = lookup(var).filter(|v| !v.trim().is_empty()) {
                *slot = Some(value.trim().trim_end_matches('/').to_owned());
            }
        }
        Ok(self)
    }

    /// The scope of Resource Manager tokens: `<audience>/.default`, the audience being
    /// [`Cloud::resource_manager_audience`] if set, else the endpoint.
    ///
    /// ```
    /// use studio_azure_auth::cloud::Cloud;
    ///
    /// assert_eq!(Cloud::azure_public().resource_manager_scope(), "https://management.azure.com/.default");
    /// let rig = Cloud::azure_public().with_overrides(|var| match var {
    ///     "AZURE_RESOURCE_MANAGER_ENDPOINT" => Some("https://127.0.0.1:8443".to_owned()),
    ///     "AZURE_RESOURCE_MANAGER_AUDIENCE" => Some("https://management.azure.com/".to_owned()),
    ///     _ => None,
    /// })?;
    /// assert_eq!(rig.resource_manager.as_str(), "https://127.0.0.1:8443/");
    /// assert_eq!(rig.resource_manager_scope(), "https://management.azure.com/.default");
    /// # Ok::<(), studio_azure_auth::Error>(())
    /// ```
    pub fn resource_manager_scope(&self) -> String {
        scope_of(
            self.resource_manager_audience.as_deref(),
            &self.resource_manager,
        )
    }

    /// The scope of Microsoft Graph tokens: `<audience>/.default`, the audience being
    /// [`Cloud::graph_audience`] if set, else the endpoint.
    pub fn graph_scope(&self) -> String {
        scope_of(self.graph_audience.as_deref(), &self.graph)
    }

    /// The login server of a registry named `name` in this cloud, e.g. `name.azurecr.io`.
    pub fn registry_login_server(&self, name: &str) -> String {
        format!("{}.{}", name.to_ascii_lowercase(), self.acr_suffix)
    }
}

impl Default for Cloud {
    fn default() -> Self {
        Self::azure_public()
    }
}

fn scope_of(audience: Option<&str>, endpoint: &Url) -> String {
    let audience = audience.unwrap_or(endpoint.as_str());
    format!("{}/.default", audience.trim_end_matches('/'))
}

/// Parses an endpoint, insisting on https and normalising to a trailing slash.
fn https_endpoint(what: &str, value: &str) -> Result<Url, Error> {
    let mut url = Url::parse(value).map_err(|e| Error::InvalidEndpoint {
        what: what.to_owned(),
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    if url.scheme() != "https" {
        return Err(Error::InvalidEndpoint {
            what: what.to_owned(),
            value: value.to_owned(),
            reason: "endpoints must use https".to_owned(),
        });
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_come_from_the_environment_and_name_the_scopes() {
        let public = Cloud::azure_public();
        assert_eq!(public.resource_manager_audience, None);
        assert_eq!(public.graph_scope(), "https://graph.microsoft.com/.default");
        let env = |var: &str| match var {
            "AZURE_RESOURCE_MANAGER_ENDPOINT" => Some("https://127.0.0.1:1/".to_owned()),
            "MICROSOFT_GRAPH_ENDPOINT" => Some("https://127.0.0.1:2".to_owned()),
            "AZURE_RESOURCE_MANAGER_AUDIENCE" => Some(" https://management.azure.com/ ".to_owned()),
            "MICROSOFT_GRAPH_AUDIENCE" => Some("https://graph.microsoft.com".to_owned()),
            _ => None,
        };
        let rig = Cloud::azure_public().with_overrides(env).unwrap();
        assert_eq!(
            rig.resource_manager_audience.as_deref(),
            Some("https://management.azure.com")
        );
        assert_eq!(
            rig.resource_manager_scope(),
            "https://management.azure.com/.default"
        );
        assert_eq!(rig.graph.as_str(), "https://127.0.0.1:2/");
        assert_eq!(rig.graph_scope(), "https://graph.microsoft.com/.default");
        // Without an audience the endpoint is the audience; blank values are ignored.
        let moved = Cloud::azure_public()
            .with_overrides(|var| match var {
                "AZURE_RESOURCE_MANAGER_ENDPOINT" => Some("https://127.0.0.1:1/".to_owned()),
                "AZURE_RESOURCE_MANAGER_AUDIENCE" => Some("  ".to_owned()),
                _ => None,
            })
            .unwrap();
        assert_eq!(moved.resource_manager_audience, None);
        assert_eq!(
            moved.resource_manager_scope(),
            "https://127.0.0.1:1/.default"
        );
    }

    #[test]
    fn every_builtin_cloud_is_https_and_named() {
        for name in CLOUD_NAMES {
            let cloud = Cloud::named(name).unwrap();
            assert_eq!(cloud.name, name);
            for url in [&cloud.authority_host, &cloud.resource_manager, &cloud.graph] {
                assert_eq!(url.scheme(), "https", "{name}: {url}");
                assert!(url.path().ends_with('/'));
            }
        }
    }

    #[test]
    fn unknown_cloud_lists_the_known_ones() {
        let err = Cloud::named("AzureGermanCloud").unwrap_err().to_string();
        assert!(
            err.contains("AzureGermanCloud") && err.contains("AzureUSGovernment"),
            "{err}"
        );
    }

    #[test]
    fn overrides_keep_path_and_reject_http() {
        let cloud = Cloud::azure_public()
            .with_overrides(|v| {
                (v == "AZURE_AUTHORITY_HOST").then(|| "https://127.0.0.1:9/x".into())
            })
            .unwrap();
        assert_eq!(cloud.authority_host.as_str(), "https://127.0.0.1:9/x/");
        assert_eq!(cloud.graph, Cloud::azure_public().graph);
        let err = Cloud::azure_public()
            .with_overrides(|v| {
                (v == "MICROSOFT_GRAPH_ENDPOINT").then(|| "http://127.0.0.1:9".into())
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MICROSOFT_GRAPH_ENDPOINT") && err.contains("https"),
            "{err}"
        );
    }
}
