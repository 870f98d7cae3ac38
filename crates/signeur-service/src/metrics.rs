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

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    pub jobs: Family<JobLabels, Counter>,
    pub seals: Family<SealLabels, Counter>,
    /// Access codes checked against their bcrypt hash (a guess the attempt limit let through).
    pub code_checks: Family<CodeCheckLabels, Counter>,
    /// Page previews rendered (a failure is remembered for a minute, not rendered again).
    pub preview_renders: Family<PreviewLabels, Counter>,
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
            webhook_outcome_commits,
            webhook_outcomes,
            jobs,
            seals,
            code_checks,
            preview_renders,
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
