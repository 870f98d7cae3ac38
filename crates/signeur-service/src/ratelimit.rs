//! Rate limits (issue 16).
//!
//! The API: each organization's requests pass a GCRA limiter (`per_sec` a second, bursts of
//! up to `burst`); the operator may give an organization its own quota
//! (`signeur org set-rate-limit`, read with the API key). Without Redis each node keeps its
//! own state (a governor keyed limiter per distinct quota, keyed by organization). With
//! `SIGNEUR_REDIS_URL` the state lives in Redis so that every node draws from one quota: one
//! Lua script per request, atomic, on Redis' own clock (nodes with skewed clocks agree). An
//! unreachable Redis never fails a request: the node decides with its local limiter for
//! [`REDIS_PAUSE`] before it asks Redis again, counts each such decision
//! (`signeur_rate_limit_fallback_total`) and logs once per pause.
//!
//! Signer pages: every page, image, document and asset request passes two limiters of
//! `pages_per_min` a minute each, one keyed by the client's address (an IPv6 address by its
//! /64) and one by the link (the SHA-256 of the path's token, never the token). They are
//! local to each node. The access code keeps its own attempt limit and lockout.
//!
//! Time: the limiters read the service's clock when it is a manual one (tests move it),
//! else a monotonic clock; Redis reads its own.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use uuid::Uuid;

use crate::{Authenticated, Clock, Service};

/// How long a node decides locally after Redis failed, before it asks Redis again.
pub const REDIS_PAUSE: Duration = Duration::from_secs(5);
/// The most one request waits for Redis (connecting or answering) before it is decided
/// locally: a reachable Redis answers in well under a millisecond.
pub const REDIS_BUDGET: Duration = Duration::from_millis(250);
/// Keyed limiters forget the keys whose state is as good as new every this many checks
/// (a flood of distinct addresses cannot grow them without bound).
const RETAIN_EVERY: u64 = 4096;
/// The largest rate or burst accepted: one request per nanosecond is already no limit.
pub const MAX_QUOTA: u32 = 1_000_000_000;

/// An API quota: `per_sec` requests a second on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiQuota {
    pub per_sec: u32,
    pub burst: u32,
}

impl ApiQuota {
    /// Both between 1 and [`MAX_QUOTA`]; the error names the offending value.
    pub fn new(per_sec: u32, burst: u32) -> Result<ApiQuota, String> {
        for (name, v) in [("per_sec", per_sec), ("burst", burst)] {
            if !(1..=MAX_QUOTA).contains(&v) {
                return Err(format!(
                    "{name} must be between 1 and {MAX_QUOTA} (got {v})"
                ));
            }
        }
        Ok(ApiQuota { per_sec, burst })
    }

    /// As stored: both columns set, each within bounds; anything else reads as no override.
    pub(crate) fn from_row(per_sec: Option<i64>, burst: Option<i64>) -> Option<ApiQuota> {
        let per_sec = u32::try_from(per_sec?).ok()?;
        let burst = u32::try_from(burst?).ok()?;
        ApiQuota::new(per_sec, burst).ok()
    }

    fn governor(self) -> governor::Quota {
        governor::Quota::per_second(nonzero(self.per_sec)).allow_burst(nonzero(self.burst))
    }

    /// The time one request's worth of quota takes to come back.
    fn interval(self) -> Duration {
        Duration::from_nanos(1_000_000_000 / u64::from(self.per_sec.max(1)))
    }
}

fn nonzero(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

/// The rate limits a node enforces (`SIGNEUR_RATE_LIMIT_PER_SEC`, `SIGNEUR_RATE_LIMIT_BURST`,
/// `SIGNEUR_PAGE_RATE_LIMIT_PER_MIN`, `SIGNEUR_REDIS_URL`).
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// Every organization's API quota unless the operator gave it its own.
    pub api: ApiQuota,
    /// Signer-page requests a minute, per client address and per link.
    pub pages_per_min: u32,
    pub redis: Option<RedisSettings>,
}

impl Default for RateLimitSettings {
    /// The documented defaults: 100 a second, bursts of 200; 600 page requests a minute.
    fn default() -> Self {
        RateLimitSettings {
            api: ApiQuota {
                per_sec: 100,
                burst: 200,
            },
            pages_per_min: 600,
            redis: None,
        }
    }
}

/// Where the shared API limiter state lives.
#[derive(Clone)]
pub struct RedisSettings {
    pub url: String,
    /// Prefix of every key this server writes (tests use one per run).
    pub key_prefix: String,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("RedisSettings")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSettings {
    /// The prefix `signeur serve` uses.
    pub const DEFAULT_PREFIX: &'static str = "signeur:ratelimit:";
}

/// What the API limiter decided for one request, and what the `RateLimit` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// The quota applied (the organization's own or the server's).
    pub quota: ApiQuota,
    /// Requests that would still be allowed right now.
    pub remaining: u64,
    /// Until the whole burst is available again.
    pub reset: Duration,
    /// Refused: the earliest a request may be allowed again.
    pub retry_after: Option<Duration>,
}

impl RateDecision {
    pub fn allowed(&self) -> bool {
        self.retry_after.is_none()
    }

    fn allowed_with(quota: ApiQuota, remaining: u64) -> RateDecision {
        let missing = u64::from(quota.burst).saturating_sub(remaining);
        RateDecision {
            quota,
            remaining,
            reset: quota
                .interval()
                .saturating_mul(missing.min(u64::from(u32::MAX)) as u32),
            retry_after: None,
        }
    }

    fn refused(quota: ApiQuota, wait: Duration) -> RateDecision {
        RateDecision {
            quota,
            remaining: 0,
            reset: wait
                + quota
                    .interval()
                    .saturating_mul(quota.burst.saturating_sub(1)),
            retry_after: Some(wait),
        }
    }
}

/// Whole seconds, rounded up (what `Retry-After` and `RateLimit`'s `t` carry).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

// --- Local limiters ----------------------------------------------------------------------------

/// The limiters' time: the service's clock when it is manual (tests move it), else a
/// monotonic clock (never the wall clock, which may jump).
#[derive(Clone)]
struct LimiterClock {
    manual: Option<(Clock, DateTime<Utc>)>,
    start: std::time::Instant,
}

impl LimiterClock {
    fn of(clock: &Clock) -> LimiterClock {
        LimiterClock {
            manual: match clock {
                Clock::Manual(_) => Some((clock.clone(), clock.now())),
                Clock::System => None,
            },
            start: std::time::Instant::now(),
        }
    }
}

impl governor::clock::Clock for LimiterClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        match &self.manual {
            Some((clock, origin)) => (clock.now() - *origin).to_std().unwrap_or_default().into(),
            None => self.start.elapsed().into(),
        }
    }
}

/// One quota, one state per key.
struct Keyed<K: Hash + Eq + Clone> {
    limiter:
        governor::RateLimiter<K, DashMapStateStore<K>, LimiterClock, StateInformationMiddleware>,
    clock: LimiterClock,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(quota: governor::Quota, clock: &LimiterClock) -> Keyed<K> {
        Keyed {
            limiter: governor::RateLimiter::dashmap_with_clock(quota, clock.clone())
                .with_middleware::<StateInformationMiddleware>(),
            clock: clock.clone(),
            checks: AtomicU64::new(0),
        }
    }

    /// `Ok(remaining)` or `Err(wait)`.
    fn check(&self, key: &K) -> Result<u64, Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.limiter.retain_recent();
        }
        use governor::clock::Clock as _;
        match self.limiter.check_key(key) {
            Ok(state) => Ok(u64::from(state.remaining_burst_capacity())),
            Err(not_until) => Err(not_until.wait_time_from(self.clock.now())),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiter.len()
    }
}

// --- Redis ---------------------------------------------------------------------------------------

/// GCRA on Redis' clock (microseconds). KEYS[1]: the organization's key; ARGV: per_sec,
/// burst. Stores the theoretical arrival time (TAT) with an expiry at that time. Returns
/// {allowed (0|1), remaining, wait µs, reset µs}. Numbers are formatted with `%.0f` because
/// Lua would write large ones in exponent notation.
/// (`replicate_commands`: effects replication, which writing after `TIME` needs before Redis
/// 5 and is always on since.)
const GCRA_SCRIPT: &str = r"
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = 1000000 / tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
local ttl = math.max(1, math.ceil((new_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl))
return {1, math.floor((now + tolerance - new_tat) / interval), 0, math.ceil(new_tat - now)}
";

struct RedisLimiter {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
    prefix: String,
    /// Until when this node decides locally (Redis failed); `None`: Redis is asked.
    paused_until: Mutex<Option<std::time::Instant>>,
}

impl RedisLimiter {
    fn new(settings: &RedisSettings) -> Result<RedisLimiter, redis::RedisError> {
        let client = redis::Client::open(settings.url.as_str())?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_BUDGET))
            .set_response_timeout(Some(REDIS_BUDGET))
            .set_number_of_retries(0);
        Ok(RedisLimiter {
            connection: redis::aio::ConnectionManager::new_lazy_with_config(client, config)?,
            script: redis::Script::new(GCRA_SCRIPT),
            prefix: settings.key_prefix.clone(),
            paused_until: Mutex::new(None),
        })
    }

    fn paused(&self) -> bool {
        let mut until = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        match *until {
            Some(t) if std::time::Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    /// After a failure: decide locally for [`REDIS_PAUSE`]; logs once per pause.
    fn pause(&self, error: &str) {
        let mut until = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if until.is_none_or(|t| t <= now) {
            *until = Some(now + REDIS_PAUSE);
            tracing::warn!(
                error,
                pause_secs = REDIS_PAUSE.as_secs(),
                "Redis does not answer for the API rate limits: this node limits on its own \
                 (each node then allows the whole quota) until it answers again"
            );
        }
    }

    async fn check(&self, org_id: Uuid, quota: ApiQuota) -> Result<RateDecision, String> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{}org:{org_id}", self.prefix));
        invocation.arg(quota.per_sec).arg(quota.burst);
        let answer: Vec<i64> =
            tokio::time::timeout(REDIS_BUDGET, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| format!("no answer within {} ms", REDIS_BUDGET.as_millis()))?
                .map_err(|e| e.to_string())?;
        let &[allowed, remaining, wait_us, reset_us] = answer.as_slice() else {
            return Err(format!("unexpected script answer {answer:?}"));
        };
        let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(if allowed == 1 {
            RateDecision {
                quota,
                remaining: u64::try_from(remaining).unwrap_or(0),
                reset: micros(reset_us),
                retry_after: None,
            }
        } else {
            RateDecision {
                quota,
                remaining: 0,
                reset: micros(reset_us),
                retry_after: Some(micros(wait_us).max(Duration::from_micros(1))),
            }
        })
    }
}

// --- The node's limiters -----------------------------------------------------------------------

pub(crate) struct RateLimits {
    default_quota: ApiQuota,
    clock: LimiterClock,
    api: Keyed<Uuid>,
    /// One limiter per distinct quota the operator gave some organization.
    api_overrides: Mutex<HashMap<ApiQuota, Arc<Keyed<Uuid>>>>,
    pages_by_address: Keyed<IpAddr>,
    pages_by_link: Keyed<String>,
    redis: Option<RedisLimiter>,
}

impl RateLimits {
    pub(crate) fn new(
        settings: &RateLimitSettings,
        clock: &Clock,
    ) -> Result<RateLimits, redis::RedisError> {
        let clock = LimiterClock::of(clock);
        let pages = governor::Quota::per_minute(nonzero(settings.pages_per_min));
        Ok(RateLimits {
            default_quota: settings.api,
            api: Keyed::new(settings.api.governor(), &clock),
            api_overrides: Mutex::default(),
            pages_by_address: Keyed::new(pages, &clock),
            pages_by_link: Keyed::new(pages, &clock),
            redis: settings.redis.as_ref().map(RedisLimiter::new).transpose()?,
            clock,
        })
    }

    fn check_locally(&self, org_id: Uuid, quota: ApiQuota) -> RateDecision {
        let outcome = if quota == self.default_quota {
            self.api.check(&org_id)
        } else {
            let limiter = {
                let mut overrides = self.api_overrides.lock().unwrap_or_else(|e| e.into_inner());
                overrides
                    .entry(quota)
                    .or_insert_with(|| Arc::new(Keyed::new(quota.governor(), &self.clock)))
                    .clone()
            };
            limiter.check(&org_id)
        };
        match outcome {
            Ok(remaining) => RateDecision::allowed_with(quota, remaining),
            Err(wait) => RateDecision::refused(quota, wait),
        }
    }
}

/// The page rate limit refused a request: retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRetry(pub Duration);

/// The key of a client address: an IPv6 address by its /64 (one host usually has a whole
/// /64 to pick addresses from).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = !0u128 << 64;
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        },
    }
}

impl Service {
    /// Enforces these rate limits (without this, none are: tests and the operator commands).
    /// Fails only on a malformed Redis URL; an unreachable Redis is not an error.
    pub fn with_rate_limits(
        mut self,
        settings: &RateLimitSettings,
    ) -> Result<Self, redis::RedisError> {
        self.rate_limits = Some(Arc::new(RateLimits::new(settings, &self.clock)?));
        Ok(self)
    }

    /// Counts one API request of this caller against its organization's quota; `None` when
    /// this node enforces no rate limits.
    pub async fn check_api_rate(&self, who: &Authenticated) -> Option<RateDecision> {
        let limits = self.rate_limits.as_ref()?;
        let quota = who.rate_limit.unwrap_or(limits.default_quota);
        let decision = match &limits.redis {
            Some(redis) if !redis.paused() => match redis.check(who.org_id, quota).await {
                Ok(d) => d,
                Err(e) => {
                    redis.pause(&e);
                    self.metrics.rate_limit_fallbacks.inc();
                    limits.check_locally(who.org_id, quota)
                }
            },
            Some(_) => {
                self.metrics.rate_limit_fallbacks.inc();
                limits.check_locally(who.org_id, quota)
            }
            None => limits.check_locally(who.org_id, quota),
        };
        if !decision.allowed() {
            self.metrics.rate_limited("api");
        }
        Some(decision)
    }

    /// Counts one signer-page request against its client address and its link (the token in
    /// its path, if any). Both must allow it.
    pub fn check_page_rate(
        &self,
        client: Option<IpAddr>,
        token: Option<&str>,
    ) -> Result<(), PageRetry> {
        let Some(limits) = self.rate_limits.as_ref() else {
            return Ok(());
        };
        if let Some(ip) = client
            && let Err(wait) = limits.pages_by_address.check(&address_key(ip))
        {
            self.metrics.rate_limited("page_address");
            return Err(PageRetry(wait));
        }
        if let Some(token) = token
            && let Err(wait) = limits
                .pages_by_link
                .check(&crate::link_tokens::token_hash(token))
        {
            self.metrics.rate_limited("page_link");
            return Err(PageRetry(wait));
        }
        Ok(())
    }

    /// Gives an organization its own API quota (`Some`) or the server's again (`None`). Every
    /// node applies it within [`crate::KEY_CACHE_TTL`] (it is read with the API key).
    pub async fn set_org_rate_limit(
        &self,
        org_id: Uuid,
        quota: Option<ApiQuota>,
    ) -> crate::Result<()> {
        let row = quota.map(|q| (i64::from(q.per_sec), i64::from(q.burst)));
        if !self.db.set_org_rate_limit(org_id, row).await? {
            return Err(crate::ServiceError::NotFound("Organization"));
        }
        self.key_cache.clear();
        Ok(())
    }

    /// An organization's own API quota, if the operator gave it one.
    pub async fn org_rate_limit(&self, org_id: Uuid) -> crate::Result<Option<ApiQuota>> {
        match self.db.org_rate_limit(org_id).await? {
            None => Err(crate::ServiceError::NotFound("Organization")),
            Some(row) => Ok(row.and_then(|(p, b)| ApiQuota::from_row(Some(p), Some(b)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(api: ApiQuota, pages_per_min: u32, clock: &Clock) -> RateLimits {
        RateLimits::new(
            &RateLimitSettings {
                api,
                pages_per_min,
                redis: None,
            },
            clock,
        )
        .unwrap()
    }

    #[test]
    fn a_burst_then_one_request_per_interval() {
        let clock = Clock::manual(Utc::now());
        let quota = ApiQuota::new(2, 3).unwrap();
        let l = limits(quota, 600, &clock);
        let org = Uuid::new_v4();
        let remaining: Vec<u64> = (0..3)
            .map(|_| l.check_locally(org, quota).remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = l.check_locally(org, quota);
        assert_eq!(refused.retry_after, Some(Duration::from_millis(500)));
        assert_eq!(refused.reset, Duration::from_millis(1500));
        clock.advance(chrono::Duration::milliseconds(499));
        assert!(!l.check_locally(org, quota).allowed());
        clock.advance(chrono::Duration::milliseconds(1));
        let d = l.check_locally(org, quota);
        assert!(d.allowed(), "{d:?}");
        assert_eq!(d.remaining, 0);
        // Another organization has its own bucket.
        assert_eq!(l.check_locally(Uuid::new_v4(), quota).remaining, 2);
    }

    #[test]
    fn an_override_has_its_own_bucket_and_quota() {
        let clock = Clock::manual(Utc::now());
        let default = ApiQuota::new(1, 1).unwrap();
        let own = ApiQuota::new(1, 4).unwrap();
        let l = limits(default, 600, &clock);
        let org = Uuid::new_v4();
        for _ in 0..4 {
            assert!(l.check_locally(org, own).allowed());
        }
        assert!(!l.check_locally(org, own).allowed());
        assert_eq!(l.check_locally(org, own).quota, own);
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let clock = Clock::manual(Utc::now());
        let l = limits(ApiQuota::new(1, 1).unwrap(), 60, &clock);
        for i in 0..10u8 {
            assert!(
                l.pages_by_address
                    .check(&IpAddr::from([10, 0, 0, i]))
                    .is_ok()
            );
        }
        assert_eq!(l.pages_by_address.len(), 10);
        clock.advance(chrono::Duration::seconds(2));
        l.pages_by_address.limiter.retain_recent();
        assert_eq!(l.pages_by_address.len(), 0);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn quotas_are_bounded() {
        assert!(ApiQuota::new(0, 1).is_err());
        assert!(ApiQuota::new(1, 0).is_err());
        assert!(ApiQuota::new(MAX_QUOTA, MAX_QUOTA).is_ok());
        assert!(ApiQuota::new(MAX_QUOTA + 1, 1).is_err());
        assert_eq!(ApiQuota::from_row(Some(5), None), None);
        assert_eq!(
            ApiQuota::from_row(Some(5), Some(7)),
            Some(ApiQuota::new(5, 7).unwrap())
        );
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Duration::from_secs(1)), 1);
    }
}
