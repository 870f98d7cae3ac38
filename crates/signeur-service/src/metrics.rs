//! Prometheus metrics (`GET /metrics`, text exposition format). Counters live in the process:
//! each node exposes its own, as Prometheus expects.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use signeur_core::JobKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: &'static str,
    /// `succeeded`, `retried` (failed, will run again) or `failed` (attempts exhausted).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SealLabels {
    /// `sealed`, `retried` or `failed`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeCheckLabels {
    /// `right` or `wrong`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PreviewLabels {
    /// `rendered` or `failed`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RateLimitedLabels {
    /// `api` (an organization's quota), `page_address` or `page_link`.
    pub scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ItemFailureLabels {
    /// The job whose row failed: `expire_requests` or `send_reminders`.
    pub kind: &'static str,
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    pub jobs: Family<JobLabels, Counter>,
    pub seals: Family<SealLabels, Counter>,
    /// Access codes checked against their bcrypt hash (a guess the attempt limit let through).
    pub code_checks: Family<CodeCheckLabels, Counter>,
    /// Page previews rendered (a failure is remembered for a minute, not rendered again).
    pub preview_renders: Family<PreviewLabels, Counter>,
    /// Requests refused by a rate limit.
    pub rate_limited: Family<RateLimitedLabels, Counter>,
    /// API requests this node limited on its own because Redis did not answer.
    pub rate_limit_fallbacks: Counter,
    /// Rows a minutely job could not handle (logged; the job goes on with the rest).
    pub row_failures: Family<ItemFailureLabels, Counter>,
    /// Transactions that recorded webhook attempt outcomes, and the outcomes they recorded
    /// (group commit: outcomes / commits is the mean batch).
    pub webhook_outcome_commits: Counter,
    pub webhook_outcomes: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("signeur");
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Background jobs run, by kind and outcome",
            jobs.clone(),
        );
        let seals = Family::<SealLabels, Counter>::default();
        registry.register(
            "seal_attempts",
            "Seal (stamp and PAdES signature) attempts, by outcome: sealed, retried (failed, will retry) or failed (gave up: the request is stamp_failed)",
            seals.clone(),
        );
        let code_checks = Family::<CodeCheckLabels, Counter>::default();
        registry.register(
            "access_code_checks",
            "Access codes checked against their hash, by outcome (right or wrong); the attempt limit refuses the rest unchecked",
            code_checks.clone(),
        );
        let preview_renders = Family::<PreviewLabels, Counter>::default();
        registry.register(
            "preview_renders",
            "Page previews rendered, by outcome (rendered or failed); a failed page is answered from memory for a minute",
            preview_renders.clone(),
        );
        let rate_limited = Family::<RateLimitedLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429 by a rate limit, by scope: api (an organization's quota), page_address or page_link (signer pages)",
            rate_limited.clone(),
        );
        let rate_limit_fallbacks = Counter::default();
        registry.register(
            "rate_limit_fallback",
            "API requests this node rate-limited on its own because Redis (SIGNEUR_REDIS_URL) did not answer",
            rate_limit_fallbacks.clone(),
        );
        let row_failures = Family::<ItemFailureLabels, Counter>::default();
        registry.register(
            "job_row_failures",
            "Requests or reminders a minutely job could not handle, by job kind (each is logged; the job goes on with the others and tries it again next minute)",
            row_failures.clone(),
        );
        let webhook_outcome_commits = Counter::default();
        registry.register(
            "webhook_outcome_commits",
            "Transactions that recorded webhook delivery attempts (several attempts waiting at once share one)",
            webhook_outcome_commits.clone(),
        );
        let webhook_outcomes = Counter::default();
        registry.register(
            "webhook_outcomes",
            "Webhook delivery attempts recorded; divided by webhook_outcome_commits, the attempts per commit",
            webhook_outcomes.clone(),
        );
        Metrics {
            registry,
            row_failures,
            webhook_outcome_commits,
            webhook_outcomes,
            jobs,
            seals,
            code_checks,
            preview_renders,
            rate_limited,
            rate_limit_fallbacks,
        }
    }
}

impl Metrics {
    /// Counts one finished job; seal jobs are counted as seal attempts too.
    pub fn job(&self, kind: JobKind, outcome: &'static str) {
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.as_str(),
                outcome,
            })
            .inc();
        if kind == JobKind::SealDocument {
            let outcome = if outcome == "succeeded" {
                "sealed"
            } else {
                outcome
            };
            self.seals.get_or_create(&SealLabels { outcome }).inc();
        }
    }

    /// Counts one row a job of `kind` could not handle.
    pub fn row_failure(&self, kind: JobKind) {
        self.row_failures
            .get_or_create(&ItemFailureLabels {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Counts one access code checked against its hash.
    pub fn code_check(&self, right: bool) {
        let outcome = if right { "right" } else { "wrong" };
        self.code_checks
            .get_or_create(&CodeCheckLabels { outcome })
            .inc();
    }

    /// Access codes checked so far (right and wrong).
    pub fn code_checks_total(&self) -> u64 {
        ["right", "wrong"]
            .into_iter()
            .map(|outcome| {
                self.code_checks
                    .get_or_create(&CodeCheckLabels { outcome })
                    .get()
            })
            .sum()
    }

    /// Counts one page preview render.
    pub fn preview_render(&self, rendered: bool) {
        let outcome = if rendered { "rendered" } else { "failed" };
        self.preview_renders
            .get_or_create(&PreviewLabels { outcome })
            .inc();
    }

    /// Page preview renders so far (rendered and failed).
    pub fn preview_renders_total(&self) -> u64 {
        ["rendered", "failed"]
            .into_iter()
            .map(|outcome| {
                self.preview_renders
                    .get_or_create(&PreviewLabels { outcome })
                    .get()
            })
            .sum()
    }

    /// Counts one request refused by a rate limit.
    pub fn rate_limited(&self, scope: &'static str) {
        self.rate_limited
            .get_or_create(&RateLimitedLabels { scope })
            .inc();
    }

    /// Counts one commit of `outcomes` webhook attempt outcomes.
    pub fn webhook_outcomes_committed(&self, outcomes: usize) {
        self.webhook_outcome_commits.inc();
        self.webhook_outcomes
            .inc_by(u64::try_from(outcomes).unwrap_or(u64::MAX));
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_seal_shows_as_a_job_and_a_seal_attempt() {
        let m = Metrics::default();
        m.job(JobKind::SealDocument, "retried");
        m.job(JobKind::SealDocument, "failed");
        m.job(JobKind::SealDocument, "succeeded");
        m.job(JobKind::SendInvitation, "succeeded");
        let text = m.render();
        assert!(
            text.contains("signeur_seal_attempts_total{outcome=\"retried\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("signeur_seal_attempts_total{outcome=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("signeur_seal_attempts_total{outcome=\"sealed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("signeur_jobs_total{kind=\"send_invitation\",outcome=\"succeeded\"} 1"),
            "{text}"
        );
    }
}
