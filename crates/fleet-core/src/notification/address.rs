//! Where a message can go: e-mail addresses, phone numbers in E.164 form and Telegram chat ids,
//! checked once when a person or rule names them.

use thiserror::Error;

use super::Channel;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("not an e-mail address (name@domain.tld)")]
    Email,
    #[error("not a phone number in E.164 form (+ country code and number, e.g. +254712345678)")]
    Phone,
    #[error("not a Telegram chat id (a number, or @channelname)")]
    Telegram,
    #[error("the {0} channel has no addresses of its own")]
    NoAddress(&'static str),
}

/// The address as stored: trimmed, e-mail domains lowercased.
pub fn normalise(channel: Channel, address: &str) -> Result<String, AddressError> {
    let a = address.trim();
    match channel {
        Channel::Email => email(a),
        Channel::Sms => phone(a),
        Channel::Telegram => telegram(a),
        Channel::Webhook | Channel::InApp => Err(AddressError::NoAddress(channel.as_str())),
    }
}

fn email(a: &str) -> Result<String, AddressError> {
    let (local, domain) = a.rsplit_once('@').ok_or(AddressError::Email)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok && a.len() <= 254 {
        Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
    } else {
        Err(AddressError::Email)
    }
}

/// E.164: a plus, a country code not starting with 0, at most 15 digits in all.
fn phone(a: &str) -> Result<String, AddressError> {
    let digits = a.strip_prefix('+').ok_or(AddressError::Phone)?;
    let ok = (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(a.to_owned())
    } else {
        Err(AddressError::Phone)
    }
}

/// A numeric chat id (groups are negative) or a public channel's @name.
fn telegram(a: &str) -> Result<String, AddressError> {
    let numeric = {
        let d = a.strip_prefix('-').unwrap_or(a);
        !d.is_empty() && d.len() <= 20 && d.chars().all(|c| c.is_ascii_digit())
    };
    let channel = a.strip_prefix('@').is_some_and(|n| {
        (5..=32).contains(&n.len())
            && n.starts_with(|c: char| c.is_ascii_alphabetic())
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if numeric || channel {
        Ok(a.to_owned())
    } else {
        Err(AddressError::Telegram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        assert_eq!(
            normalise(Channel::Email, " Ops.Team+night@Example.CO.KE ").as_deref(),
            Ok("Ops.Team+night@example.co.ke")
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@-x.com",
            "a..b@example.com",
            "a@example..com",
            "a@exa_mple.com",
        ] {
            assert_eq!(normalise(Channel::Email, bad), Err(AddressError::Email), "{bad}");
        }
    }

    #[test]
    fn phone_numbers_are_e164() {
        assert_eq!(normalise(Channel::Sms, "+254712345678").as_deref(), Ok("+254712345678"));
        assert_eq!(normalise(Channel::Sms, "+256772123456").as_deref(), Ok("+256772123456"));
        for bad in [
            "0712345678",
            "254712345678",
            "+0712345678",
            "+2547 1234",
            "+1234567",
            "+1234567890123456",
            "+25471234567x",
        ] {
            assert_eq!(normalise(Channel::Sms, bad), Err(AddressError::Phone), "{bad}");
        }
    }

    #[test]
    fn telegram_chat_ids() {
        for good in ["123456789", "-1001234567890", "@fleet_alerts"] {
            assert_eq!(normalise(Channel::Telegram, good).as_deref(), Ok(good));
        }
        for bad in ["", "-", "@abc", "@1abcde", "12ab", "@fleet-alerts"] {
            assert_eq!(normalise(Channel::Telegram, bad), Err(AddressError::Telegram), "{bad}");
        }
        assert!(normalise(Channel::Webhook, "x").is_err());
    }
}
