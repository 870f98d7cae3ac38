//! Time from a clock tests can move. Every instant is truncated to milliseconds
//! (see `signeur_core::time`).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock::Manual(Arc::new(Mutex::new(signeur_core::time::truncate_ms(start))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => signeur_core::time::truncate_ms(Utc::now()),
            Clock::Manual(t) => *t.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(t) = self {
            let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
            *t = signeur_core::time::truncate_ms(*t + by);
        }
    }
}
