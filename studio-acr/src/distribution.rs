//! One repository of a registry through the OCI distribution API: manifests (get, put, head,
//! delete), blobs (head, get as a stream, mount, upload sessions), tags, and ACR's tag detail.
//!
//! ```no_run
//! # async fn demo() -> Result<(), studio_acr::Error> {
//! use studio_acr::auth::RegistryCredential;
//! use studio_acr::client::{RegistryClient, RegistryClientOptions};
//! use studio_acr::distribution::{Repository, TagOrder};
//!
//! let client = RegistryClient::new("myacr.azurecr.io", RegistryCredential::Anonymous, RegistryClientOptions::default())?;
//! let repo = Repository::new(client, "leaf-ai/runner");
//! let manifest = repo.get_manifest("0.0.33-master-1elHeQ").await?;
//! println!("{} {}", manifest.digest(), manifest.media_type());
//! for tag in repo.acr_tags(Some(TagOrder::TimeDesc), Some(100)).await? {
//!     println!("{} {} {}", tag.name, tag.digest, tag.last_update_time);
//! }
//! # Ok(()) }
//! ```

use std::pin::Pin;

use bytes::Bytes;
use futures::TryStreamExt;
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::io::AsyncRead;
use url::Url;

use crate::Error;
use crate::auth::Scope;
use crate::client::{MANIFEST_ACCEPT, RegistryClient, check, registry_error_message};
use crate::manifest::{MAX_MANIFEST_SIZE, Manifest};

/// A blob being read: any byte stream.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// One repository of a registry.
#[derive(Clone, Debug)]
pub struct Repository {
    client: RegistryClient,
    name: String,
}

/// What a cross-repository mount gave.
#[derive(Debug)]
pub enum Mount {
    /// `201`: the blob is now in the repository.
    Mounted,
    /// `202`: not mounted; an upload session was opened instead.
    Session(UploadSession),
}

/// An open upload session.
#[derive(Clone, Debug)]
pub struct UploadSession {
    /// Where to send the data (the `Location` answered).
    pub location: Url,
    /// The registry's `OCI-Chunk-Min-Length`, if it sent one.
    pub min_chunk: Option<u64>,
}

/// The order of [`Repository::acr_tags`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagOrder {
    /// Newest first.
    TimeDesc,
    /// Oldest first.
    TimeAsc,
}

/// A tag as ACR's `/acr/v1/<repo>/_tags` describes it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AcrTag {
    /// The tag.
    pub name: String,
    /// The manifest digest it points at.
    pub digest: String,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub created_time: String,
    /// When it was last changed (RFC 3339).
    #[serde(default)]
    pub last_update_time: String,
    /// Whether it is signed.
    #[serde(default)]
    pub signed: bool,
    /// Its lock flags.
    #[serde(default)]
    pub changeable_attributes: Option<AcrChangeableAttributes>,
}

/// ACR's per-tag lock flags.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AcrChangeableAttributes {
    /// Can be deleted.
    #[serde(default)]
    pub delete_enabled: bool,
    /// Can be overwritten.
    #[serde(default)]
    pub write_enabled: bool,
    /// Can be pulled.
    #[serde(default)]
    pub read_enabled: bool,
    /// Is listed.
    #[serde(default)]
    pub list_enabled: bool,
}

#[derive(Deserialize)]
struct AcrTagPage {
    #[serde(default)]
    tags: Vec<AcrTag>,
}

impl Repository {
    /// The repository `name` of the registry `client` talks to.
    pub fn new(client: RegistryClient, name: &str) -> Self {
        Self {
            client,
            name: name.to_owned(),
        }
    }

    /// The client.
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// The repository name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `repository:<name>:<actions>`.
    pub fn scope(&self, actions: &[&str]) -> Scope {
        Scope::repository(&self.name, actions)
    }

    fn pull(&self) -> [Scope; 1] {
        [self.scope(&["pull"])]
    }

    fn push(&self) -> [Scope; 1] {
        [self.scope(&["pull", "push"])]
    }

    fn url(&self, tail: &str) -> Result<Url, Error> {
        self.client.url(&format!("v2/{}/{tail}", self.name))
    }

    /// The manifest a tag or digest names, read to at most 4 MiB and, for a digest, verified.
    pub async fn get_manifest(&self, reference: &str) -> Result<Manifest, Error> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let response = self
            .client
            .send(&self.pull(), |http| {
                http.get(url.clone()).header("accept", MANIFEST_ACCEPT)
            })
            .await?;
        let what = format!("GET {}:{reference}", self.name);
        let response = check(response, &what).await?;
        if let Some(size) = response.content_length()
            && size > MAX_MANIFEST_SIZE
        {
            return Err(Error::ManifestTooLarge { what, size });
        }
        let media_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| Error::Registry(format!("{what}: {e}")))?
        {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > MAX_MANIFEST_SIZE {
                return Err(Error::ManifestTooLarge {
                    what,
                    size: body.len() as u64,
                });
            }
        }
        let manifest = Manifest::from_bytes(body, media_type.as_deref())?;
        if crate::manifest::is_digest(reference) {
            manifest.verify(reference)?;
        }
        Ok(manifest)
    }

    /// Whether the manifest `reference` exists; its digest if so.
    pub async fn head_manifest(&self, reference: &str) -> Result<Option<String>, Error> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let response = self
            .client
            .send(&self.pull(), |http| {
                http.head(url.clone()).header("accept", MANIFEST_ACCEPT)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check(response, &format!("HEAD {}:{reference}", self.name)).await?;
        Ok(response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| Some(reference.to_owned())))
    }

    /// Writes `manifest`'s exact bytes under `reference` (a tag or its digest).
    pub async fn put_manifest(&self, manifest: &Manifest, reference: &str) -> Result<(), Error> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let body: Bytes = manifest.bytes().clone();
        let media_type = manifest.media_type().to_owned();
        let response = self
            .client
            .send(&self.push(), |http| {
                http.put(url.clone())
                    .header("content-type", &media_type)
                    .body(body.clone())
            })
            .await?;
        check(response, &format!("PUT {}:{reference}", self.name)).await?;
        Ok(())
    }

    /// Whether the blob exists in this repository.
    pub async fn blob_exists(&self, digest: &str) -> Result<bool, Error> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let response = self
            .client
            .send(&self.pull(), |http| http.head(url.clone()))
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => check(response, &format!("HEAD blob {digest}"))
                .await
                .map(|_| false),
        }
    }

    /// Reads a blob as a stream (retried until the response starts; the body is not buffered).
    pub async fn get_blob(&self, digest: &str) -> Result<BlobReader, Error> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let response = self
            .client
            .send(&self.pull(), |http| http.get(url.clone()))
            .await?;
        let response = check(response, &format!("GET blob {digest}")).await?;
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        Ok(Box::pin(tokio_util::io::StreamReader::new(stream)))
    }

    /// Opens an upload session (`POST …/blobs/uploads/`).
    pub async fn start_upload(&self) -> Result<UploadSession, Error> {
        let url = self.url("blobs/uploads/")?;
        let response = self
            .client
            .send(&self.push(), |http| http.post(url.clone()))
            .await?;
        let response = check(response, &format!("POST {} upload", self.name)).await?;
        self.session(&response)
    }

    fn session(&self, response: &reqwest::Response) -> Result<UploadSession, Error> {
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::Registry(format!(
                    "{}: an upload session without a Location",
                    self.name
                ))
            })?;
        Ok(UploadSession {
            location: self.client.url(location)?,
            min_chunk: response
                .headers()
                .get("oci-chunk-min-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok()),
        })
    }

    /// Asks the registry to mount `digest` from repository `from` of the same registry.
    pub async fn mount(&self, digest: &str, from: &str) -> Result<Mount, Error> {
        let mut url = self.url("blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let scopes = [
            self.scope(&["pull", "push"]),
            Scope::repository(from, &["pull"]),
        ];
        let response = self
            .client
            .send(&scopes, |http| http.post(url.clone()))
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Session(self.session(&response)?)),
            _ => {
                check(response, &format!("mount {digest} from {from}")).await?;
                Err(Error::Registry(format!(
                    "mount {digest} from {from}: unexpected answer"
                )))
            }
        }
    }

    /// Every tag (`n` + `Link` pagination).
    pub async fn tags(&self, page_size: Option<u32>) -> Result<Vec<String>, Error> {
        self.client.list_tags(&self.name, page_size).await
    }

    /// ACR's tag detail (`/acr/v1/<repo>/_tags`), in `order`, following `Link` pagination.
    pub async fn acr_tags(
        &self,
        order: Option<TagOrder>,
        page_size: Option<u32>,
    ) -> Result<Vec<AcrTag>, Error> {
        let mut url = self.client.url(&format!("acr/v1/{}/_tags", self.name))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(order) = order {
                q.append_pair(
                    "orderby",
                    match order {
                        TagOrder::TimeDesc => "timedesc",
                        TagOrder::TimeAsc => "timeasc",
                    },
                );
            }
            if let Some(n) = page_size {
                q.append_pair("n", &n.to_string());
            }
        }
        let mut tags = Vec::new();
        let mut next = Some(url);
        let mut pages = 0u32;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 100_000 {
                return Err(Error::Registry("ACR tag listing loops".to_owned()));
            }
            let response = self
                .client
                .send(&self.pull(), |http| http.get(url.clone()))
                .await?;
            let response = check(response, url.path()).await?;
            if let Some(link) = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(crate::client::next_link)
            {
                next = Some(self.client.url(&link)?);
            }
            let text = response
                .text()
                .await
                .map_err(|e| Error::Registry(format!("{}: {e}", url.path())))?;
            tags.extend(parse_acr_tags(&text)?);
        }
        Ok(tags)
    }

    /// Deletes the manifest `digest` (and every tag pointing at it).
    pub async fn delete_manifest(&self, digest: &str) -> Result<(), Error> {
        let url = self.url(&format!("manifests/{digest}"))?;
        let response = self
            .client
            .send(&[self.scope(&["delete"])], |http| http.delete(url.clone()))
            .await?;
        check(response, &format!("DELETE {}@{digest}", self.name)).await?;
        Ok(())
    }

    /// Deletes one tag, leaving the manifest: `DELETE /v2/<repo>/manifests/<tag>` (OCI 1.1),
    /// then ACR's `DELETE /acr/v1/<repo>/_tags/<tag>`. A registry that supports neither (the
    /// CNCF distribution server answers `400 DIGEST_INVALID`, or `405 UNSUPPORTED` with
    /// deletes disabled) gets [`Error::TagDeleteUnsupported`], naming the digest to delete
    /// instead; nothing is changed. A tag that does not exist is a
    /// [`Error::RegistryStatus`] 404.
    pub async fn delete_tag(&self, tag: &str) -> Result<(), Error> {
        crate::reference::check_tag_or_digest(tag)?;
        if crate::manifest::is_digest(tag) {
            return Err(Error::InvalidArgument {
                what: "tag".to_owned(),
                value: tag.to_owned(),
                reason: "a digest; use delete_manifest".to_owned(),
            });
        }
        let Some(digest) = self.head_manifest(tag).await? else {
            return Err(Error::RegistryStatus {
                what: format!("delete tag {}:{tag}", self.name),
                status: 404,
                message: "no such tag".to_owned(),
            });
        };
        let scopes = [self.scope(&["delete"])];
        let url = self.url(&format!("manifests/{tag}"))?;
        let response = self
            .client
            .send(&scopes, |http| http.delete(url.clone()))
            .await?;
        if response.status().is_success() {
            return Ok(());
        }
        let first = format!(
            "DELETE by tag: {} {}",
            response.status().as_u16(),
            registry_error_message(&response.text().await.unwrap_or_default())
        );
        let url = self
            .client
            .url(&format!("acr/v1/{}/_tags/{tag}", self.name))?;
        let response = self
            .client
            .send(&scopes, |http| http.delete(url.clone()))
            .await?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(Error::TagDeleteUnsupported {
            repository: self.name.clone(),
            tag: tag.to_owned(),
            digest,
            reason: format!("{first}; ACR's _tags API: {}", response.status().as_u16()),
        })
    }
}

/// Parses one page of ACR's `/acr/v1/<repo>/_tags`.
pub fn parse_acr_tags(body: &str) -> Result<Vec<AcrTag>, Error> {
    serde_json::from_str::<AcrTagPage>(body)
        .map(|p| p.tags)
        .map_err(|e| Error::Registry(format!("not an ACR tag listing: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_tag_pages_parse() {
        // The shape ACR documents for GET /acr/v1/{name}/_tags.
        let body = r#"{"registry":"myacr.azurecr.io","imageName":"leaf-ai/runner","tags":[
          {"name":"0.0.33-master-1elHeQ","digest":"sha256:aa","createdTime":"2024-01-02T03:04:05.6Z",
           "lastUpdateTime":"2024-01-02T03:04:05.6Z","signed":false,
           "changeableAttributes":{"deleteEnabled":true,"writeEnabled":true,"readEnabled":true,"listEnabled":true}},
          {"name":"latest","digest":"sha256:bb","createdTime":"2023-01-01T00:00:00Z","lastUpdateTime":"2023-01-01T00:00:00Z"}]}"#;
        let tags = parse_acr_tags(body).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].name, "0.0.33-master-1elHeQ");
        assert!(
            tags[0]
                .changeable_attributes
                .as_ref()
                .unwrap()
                .delete_enabled
        );
        assert_eq!(tags[1].changeable_attributes, None);
        assert!(parse_acr_tags("{\"tags\": 3}").is_err());
    }
}
