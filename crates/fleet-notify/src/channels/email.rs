//! E-mail over SMTP (lettre on tokio with rustls): STARTTLS, TLS from the first byte, or plain
//! for a relay nearby; optional AUTH; each message multipart/alternative with a text and an
//! HTML part. SMTP 5xx replies are permanent, 4xx replies and connection trouble are retried.

use std::time::Duration;

use fleet_config::{SmtpConfig, SmtpSecurity};
use fleet_core::notification::{address, Channel};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{error_chain, BuildError, Delivery, Outcome};

pub(crate) struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Email {
    pub(crate) fn new(c: &SmtpConfig, timeout: Duration) -> Result<Self, BuildError> {
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| BuildError::Email(format!("FLEETD_SMTP_FROM is not a mailbox: {e}")))?;
        let tls = |host: &str| -> Result<TlsParameters, BuildError> {
            let mut params = TlsParameters::builder(host.to_owned());
            if let Some(path) = &c.ca_file {
                let pem = std::fs::read(path).map_err(|e| {
                    BuildError::Email(format!(
                        "cannot read FLEETD_SMTP_CA_FILE {}: {e}",
                        path.display()
                    ))
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    BuildError::Email(format!(
                        "FLEETD_SMTP_CA_FILE {} is not a PEM certificate: {e}",
                        path.display()
                    ))
                })?;
                params = params.add_root_certificate(cert);
            }
            params.build_rustls().map_err(|e| BuildError::Email(error_chain(&e)))
        };
        // the host may be written [::1] for an IPv6 address; TLS names it without brackets
        let host = c.host.trim_start_matches('[').trim_end_matches(']');
        let security = match c.security {
            SmtpSecurity::StartTls => Tls::Required(tls(host)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls(host)?),
            SmtpSecurity::Plain => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(c.port)
            .tls(security)
            .timeout(Some(timeout));
        if let Some(creds) = &c.credentials {
            builder = builder
                .credentials(Credentials::new(creds.user.clone(), creds.password.expose().clone()));
        }
        Ok(Email { transport: builder.build(), from })
    }

    pub(crate) async fn send(&self, d: &Delivery<'_>) -> Outcome {
        let to = match address::normalise(Channel::Email, d.address) {
            Ok(to) => to,
            Err(e) => return Outcome::permanent(None, e.to_string()),
        };
        let to: Mailbox = match to.parse() {
            Ok(to) => to,
            Err(e) => return Outcome::permanent(None, format!("not an e-mail address: {e}")),
        };
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(d.message.subject.clone())
            // one id for every attempt, so a mail system can tell a retry from a new message
            .message_id(Some(format!("<{}@fleetd>", d.idempotency_key)))
            .multipart(MultiPart::alternative_plain_html(
                d.message.text.clone(),
                d.message.html.clone(),
            ));
        let message = match message {
            Ok(m) => m,
            Err(e) => return Outcome::permanent(None, format!("cannot build the e-mail: {e}")),
        };
        match self.transport.send(message).await {
            Ok(response) => {
                let code = response.code().to_string().parse().ok();
                Outcome::sent(code, response.message().collect::<Vec<_>>().join(" "))
            }
            Err(e) => {
                let code = e.status().and_then(|c| c.to_string().parse().ok());
                let text = error_chain(&e);
                if e.is_permanent() {
                    Outcome::permanent(code, text)
                } else {
                    // 4xx replies, timeouts, refused connections, TLS trouble
                    Outcome::retry(code, text)
                }
            }
        }
    }
}
