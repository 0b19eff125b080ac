//! Credentials: the ways the toolkit obtains Entra ID access tokens. Each one implements
//! `azure_core`'s [`TokenCredential`](azure_core::credentials::TokenCredential), talks to the
//! authority host of a [`Cloud`](crate::cloud::Cloud) through the toolkit's one HTTP transport,
//! and reports failures as this crate's [`Error`](crate::Error) (wrapped in the `azure_core`
//! error; see [`Error::in_azure_error`](crate::Error::in_azure_error)).

pub mod environment;
pub mod service_principal;
