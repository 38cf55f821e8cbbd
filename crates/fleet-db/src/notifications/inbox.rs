//! `fleet.notify_inbox`: the in-app notifications of each user, read and unread.
