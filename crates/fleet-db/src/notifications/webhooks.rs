//! `fleet.notify_webhooks`: webhook receivers and their signing secrets.
