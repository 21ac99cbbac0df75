//! Logging and tracing for the long-running faces (`cfa mcp`, `cfa serve`): a
//! tracing-subscriber writing to STDERR only (stdout is the MCP channel), JSON or
//! compact, filtered by `--log-level` (which beats `RUST_LOG`), and — with the `otel`
//! cargo feature — an OTLP/HTTP trace exporter (batch processor, built before any
//! tokio runtime exists; docs/architecture.md#telemetry). Without the feature nothing of OpenTelemetry
//! is compiled in and `--otel-endpoint` is refused.

use clap::{Args, ValueEnum};
use miette::Report;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Whether [`init`] installed a layer that exports spans (OpenTelemetry): set once,
/// read per request by the faces (a relaxed load).
static SPANS_EXPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a span's fields recorded after it was entered for the last time can reach
/// anything: only an exporting layer (OpenTelemetry) reads them. The log layer prints a
/// span's fields only with the events logged inside the span, so a field recorded once
/// no event will be logged in the span is never printed; the faces skip recording such
/// fields (`cfa serve`'s `status`, `decision`, `fault_codes`) unless spans are exported.
pub fn spans_exported() -> bool {
    SPANS_EXPORTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One compact human-readable line per event.
    Compact,
    /// One JSON object per event.
    Json,
}

/// Flags shared by `cfa mcp` and `cfa serve`.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Log filter in `RUST_LOG` syntax (e.g. `info`, `cfa=debug,warn`); beats
    /// `RUST_LOG`. Default: `RUST_LOG`, else `info,rmcp=warn`.
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format (always written to stderr).
    #[arg(long, value_enum, default_value = "compact")]
    pub log_format: LogFormat,
    /// Export traces over OTLP/HTTP to this endpoint (e.g. `http://127.0.0.1:4318`;
    /// `/v1/traces` is appended). Needs a build with the `otel` feature.
    #[arg(long, env = "CFA_OTEL_ENDPOINT", value_name = "URL")]
    pub otel_endpoint: Option<String>,
}

/// Keeps the exporter alive; [`Telemetry::shutdown`] flushes pending spans.
#[derive(Debug, Default)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter (no-op without one).
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(p) = self.provider {
            if let Err(e) = p.force_flush() {
                tracing::warn!("cannot flush traces: {e}");
            }
            if let Err(e) = p.shutdown() {
                tracing::warn!("cannot shut the trace exporter down: {e}");
            }
        }
    }
}

fn filter(args: &TelemetryArgs) -> Result<EnvFilter, Report> {
    match &args.log_level {
        Some(level) => EnvFilter::try_new(level)
            .map_err(|e| Report::msg(format!("invalid --log-level {level:?}: {e}"))),
        None => {
            Ok(EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn")))
        }
    }
}

/// Installs the global subscriber. Call before building the tokio runtime.
pub fn init(args: &TelemetryArgs, service: &'static str) -> Result<Telemetry, Report> {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let fmt = match args.log_format {
        LogFormat::Compact => fmt.compact().boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter(args)?).with(fmt);
    #[cfg(feature = "otel")]
    {
        let mut telemetry = Telemetry::default();
        let layer = match &args.otel_endpoint {
            Some(endpoint) => {
                let (provider, layer) = otel::layer(endpoint, service)?;
                telemetry.provider = Some(provider);
                SPANS_EXPORTED.store(true, std::sync::atomic::Ordering::Relaxed);
                Some(layer)
            }
            None => None,
        };
        registry
            .with(layer)
            .try_init()
            .map_err(|e| Report::msg(format!("cannot install the log subscriber: {e}")))?;
        Ok(telemetry)
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = service;
        without_otel(args, registry)
    }
}

/// [`init`] in a build without the `otel` feature: an OTLP endpoint is refused with how
/// to get one. Compiled in every build (so the workspace's one linted build covers it),
/// called only where the feature is off.
#[cfg_attr(feature = "otel", allow(dead_code))]
fn without_otel(
    args: &TelemetryArgs,
    registry: impl SubscriberInitExt,
) -> Result<Telemetry, Report> {
    if let Some(endpoint) = &args.otel_endpoint {
        return Err(Report::msg(format!(
            "--otel-endpoint {endpoint}: this cfa was built without the `otel` feature \
             (cargo build -p cfa-cli --features otel)"
        )));
    }
    registry
        .try_init()
        .map_err(|e| Report::msg(format!("cannot install the log subscriber: {e}")))?;
    Ok(Telemetry::default())
}

#[cfg(feature = "otel")]
mod otel {
    use miette::Report;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// The traces URL for an OTLP/HTTP base endpoint.
    pub fn traces_url(endpoint: &str) -> String {
        let base = endpoint.trim_end_matches('/');
        if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        }
    }

    pub fn layer<S>(
        endpoint: &str,
        service: &'static str,
    ) -> Result<
        (
            SdkTracerProvider,
            tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
        ),
        Report,
    >
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(traces_url(endpoint))
            .build()
            .map_err(|e| {
                Report::msg(format!(
                    "cannot build the OTLP exporter for {endpoint}: {e}"
                ))
            })?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        let tracer = provider.tracer("cfa");
        Ok((provider, tracing_opentelemetry::layer().with_tracer(tracer)))
    }
}
