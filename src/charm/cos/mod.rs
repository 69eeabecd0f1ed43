//! COS observability: the Prometheus endpoint the scheduler serves ([`metrics`]) and the `cos-agent`
//! relation data ([`relation`]): scrape job, alert rules and dashboard, in the `cos_agent` library's
//! provider format.
//!
//! Why an HTTP endpoint and not node-exporter's textfile collector: `cos_agent`'s provider data carries
//! scrape jobs (`metrics_scrape_jobs`) that the agent scrapes on the unit's host; it has no field for
//! textfile directories, and the collectors' node exporter reads only their own. So the scheduler serves
//! `GET /metrics` on 127.0.0.1 and the scrape job points there (the agent is a subordinate on the same
//! machine).

pub mod metrics;
pub mod relation;
pub mod xz;

/// `metrics_port`'s default: unassigned in Prometheus' default port allocations list.
pub const DEFAULT_METRICS_PORT: u16 = 9781;
