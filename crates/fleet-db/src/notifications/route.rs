//! Routing new events to outbox and inbox rows inside the transaction that stored them.
