//! Signeur's integration suite: one test binary, run on SQLite by default and on
//! PostgreSQL when `SIGNEUR_TEST_DATABASE_URL` is set (`.ci/run` does both).

mod abuse;
mod api;
mod chain;
mod cli;
mod concurrency;
mod contract;
mod email;
mod events_api;
mod evidence;
mod expiry;
mod framing;
mod jobs;
mod legacy_webhook;
mod queue;
mod ratelimit;
mod reminders;
mod seal_keys;
mod secrets;
mod sessions;
mod settings;
mod signing;
mod smtp;
mod snapshots;
mod support;
mod typed;
mod upgrade;
mod webhook_delivery;
mod webhooks;
