"""The four dashboards, built with the Grafana foundation SDK."""

from __future__ import annotations

from grafana_foundation_sdk.builders import (
    barchart,
    bargauge,
    common,
    expr,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import elasticsearch as es
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.models.common import StackingMode
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

from fraud_operator.grafana import ACCOUNTS, ALERTS, KPIS, OUTCOMES, PROMETHEUS

PROM_REF = DataSourceRef(type_val="prometheus", uid=PROMETHEUS)
ALERTS_REF = DataSourceRef(type_val="elasticsearch", uid=ALERTS)
KPIS_REF = DataSourceRef(type_val="elasticsearch", uid=KPIS)
OUTCOMES_REF = DataSourceRef(type_val="elasticsearch", uid=OUTCOMES)
ACCOUNTS_REF = DataSourceRef(type_val="elasticsearch", uid=ACCOUNTS)
# Grafana's server-side expressions (math over the other queries of a panel).
EXPR_REF = DataSourceRef(type_val="__expr__", uid="__expr__")
SEL = 'namespace=~"$namespace", pipeline=~"$pipeline"'
WINDOW = "5m"
# Labelled outcomes are few per minute: precision, recall and fraud rate over a longer window.
QUALITY_WINDOW = "15m"
REFRESH = "30s"
TRANSACTIONS = f"fraud_detection_transactions_total{{{SEL}}}"
AMOUNT = f"fraud_detection_transaction_amount_total{{{SEL}}}"
ALERT_RATE = f"sum(rate(fraud_detection_alerts_total{{{SEL}}}[{WINDOW}]))"
ALERTS_PER_TRANSACTION = f"{ALERT_RATE} / sum(rate({TRANSACTIONS}[{WINDOW}]))"
ALERTS_BY_RULE = f"sum by (rule) (rate(fraud_detection_alerts_total{{{SEL}}}[{WINDOW}])) * 60"
TP, FP, FN, TN = "true_positive", "false_positive", "false_negative", "true_negative"
# Rule `any` also counts `unknown` (a label whose transaction the job no longer remembers):
# left out of every ratio.
KNOWN = f"{TP}|{FP}|{FN}|{TN}"


def outcomes(rule: str, outcome: str = "") -> str:
    """The rate of labelled outcomes; `rule` and `outcome` are PromQL matchers (`="any"`)."""
    matchers = f"{SEL}, rule{rule}" + (f", outcome{outcome}" if outcome else "")
    return f"rate(fraud_detection_label_outcomes_total{{{matchers}}}[{QUALITY_WINDOW}])"


def ratio(numerator: str, denominator: str, by: str = "") -> str:
    """sum(numerator) / sum(denominator), by `by`; a group without numerator series counts 0."""
    group = f" by ({by})" if by else ""
    top, bottom = f"sum{group} ({numerator})", f"sum{group} ({denominator})"
    return f"({top} or 0 * {bottom}) / {bottom}"


# Precision of each rule: tp / (tp + fp) (per-rule outcomes are only those two).
PRECISION_BY_RULE = ratio(outcomes('!="any"', f'="{TP}"'), outcomes('!="any"'), "rule")
# Recall: tp / (tp + fn) of rule `any`, overall and per fraud scenario.
RECALL = ratio(outcomes('="any"', f'="{TP}"'), outcomes('="any"', f'=~"{TP}|{FN}"'))
RECALL_BY_SCENARIO = ratio(
    outcomes('="any"', f'="{TP}"'), outcomes('="any"', f'=~"{TP}|{FN}"'), "scenario"
)
# Fraud rate: labelled fraud (tp + fn) among all labelled transactions, rule `any`.
FRAUD_RATE = ratio(outcomes('="any"', f'=~"{TP}|{FN}"'), outcomes('="any"', f'=~"{KNOWN}"'))
FRAUD_RATE_STEPS = ((None, "green"), (0.01, "orange"), (0.05, "red"))


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (the base colour)."""
    return (
        db.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


OK = (None, "green")
QUALITY_STEPS = ((None, "red"), (0.5, "orange"), (0.9, "green"))


def promql(expr: str, legend: str = "", ref: str = "A") -> prom.Dataquery:
    return prom.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref).range()


def prom_instant(expr: str, legend: str = "", ref: str = "A") -> prom.Dataquery:
    return prom.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref).instant()


def series(title: str, unit: str, *queries: prom.Dataquery, width: int = 12):
    """A time series panel of Prometheus queries."""
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(PROM_REF)
        .unit(unit)
        .span(width)
        .height(8)
        .min(0)
        .fill_opacity(10)
    )
    for query in queries:
        panel.with_target(query)
    return panel


def variables(board: db.Dashboard) -> db.Dashboard:
    """Namespace and pipeline, from the job's metrics (`pipeline` comes from relabelling)."""
    for name, query in (
        ("namespace", "label_values(fraud_detection_input_rows_total, namespace)"),
        (
            "pipeline",
            'label_values(fraud_detection_input_rows_total{namespace=~"$namespace"}, pipeline)',
        ),
    ):
        board.with_variable(
            db.QueryVariable(name)
            .label(name.capitalize())
            .datasource(PROM_REF)
            .query(query)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    return board


def dashboard(uid: str, title: str, description: str, tags: list[str]) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["fraudpipeline", *tags])
        .refresh(REFRESH)
        .time("now-6h", "now")
        .timezone("browser")
        .editable()
    )


def es_query(time_field: str, metrics, *buckets, query: str = "*", ref: str = "A") -> es.Dataquery:
    """An Elasticsearch target over the documents matching `query` (Lucene), bucketed in order.
    `metrics`: one metric or a list."""
    metrics = metrics if isinstance(metrics, list) else [metrics]
    target = es.Dataquery().ref_id(ref).query(query).time_field(time_field).metrics(metrics)
    return target.bucket_aggs(list(buckets)) if buckets else target


def terms(bucket_id: str, field: str, size: int, order: str) -> es.Terms:
    settings = es.ElasticsearchTermsSettings().size(str(size)).order_by(order)
    return es.Terms().id(bucket_id).field(field).settings(settings)


def per_interval(bucket_id: str, field: str, interval: str = "1m") -> es.DateHistogram:
    """Time buckets of `interval` over the whole range, empty ones included (as 0), so that the
    two sides of a ratio have the same points."""
    settings = es.ElasticsearchDateHistogramSettings().interval(interval).min_doc_count("0")
    return es.DateHistogram().id(bucket_id).field(field).settings(settings)


def es_sums(
    ref: str, source: DataSourceRef, time_field: str, field: str, query: str, *buckets
) -> es.Dataquery:
    """A hidden target: the sum of `field` over the documents matching `query`, per bucket
    (several documents per minute and key, one per micro-batch, added up)."""
    metric = es.Sum().id("1").field(field)
    return (
        es_query(time_field, metric, *buckets, query=query, ref=ref).datasource(source).hide(True)
    )


def divide(numerator: str, denominator: str, ref: str = "C") -> expr.TypeMath:
    """numerator / denominator, series matched by their labels (the terms keys) and time: a
    Grafana math expression, since Elasticsearch needs a script language for a bucket_script."""
    return (
        expr.TypeMath()
        .ref_id(ref)
        .datasource(EXPR_REF)
        .expression(f"${numerator} / ${denominator}")
    )


def es_ratio(
    title: str,
    source: DataSourceRef,
    unit: str,
    numerator: es.Dataquery,
    denominator: es.Dataquery,
) -> timeseries.Panel:
    """A time series of A / B, two hidden Elasticsearch targets of the same buckets."""
    return (
        timeseries.Panel()
        .title(title)
        .datasource(source)
        .unit(unit)
        .span(12)
        .height(8)
        .min(0)
        .with_target(numerator)
        .with_target(denominator)
        .with_target(divide("A", "B"))
    )


def outcome_ratio(title: str, numerator: str, denominator: str, by: str = "") -> timeseries.Panel:
    """sum(transactions) of the outcomes matching `numerator` over those matching
    `denominator` (Lucene queries), per 5 minutes of event time and per `by`."""
    buckets = ([terms("3", by, 10, "_term")] if by else []) + [per_interval("2", "minute", "5m")]
    return es_ratio(
        title,
        OUTCOMES_REF,
        "percentunit",
        es_sums("A", OUTCOMES_REF, "minute", "transactions", numerator, *buckets),
        es_sums("B", OUTCOMES_REF, "minute", "transactions", denominator, *buckets),
    ).max(1)


def es_terms_table(title: str, field: str, label: str) -> table.Panel:
    """The ten values of `field` with the most alerts."""
    return (
        table.Panel()
        .title(title)
        .datasource(ALERTS_REF)
        .span(6)
        .height(8)
        .with_target(
            es_query("detection_time", es.Count().id("1"), terms("2", field, 10, "_count"))
        )
        .display_name(label)
    )


def es_series(title: str, ref: DataSourceRef, unit: str, target: es.Dataquery, width: int = 12):
    """A time series panel of one Elasticsearch target."""
    return (
        timeseries.Panel()
        .title(title)
        .datasource(ref)
        .unit(unit)
        .span(width)
        .height(8)
        .min(0)
        .with_target(target)
    )


def overview() -> db.Dashboard:
    board = variables(
        dashboard(
            "fraud-overview",
            "Fraud overview",
            "Transactions, ticket sizes, fraud rate, the top accounts and the latest alerts of "
            "the pipelines.",
            ["overview"],
        )
    )
    board.with_panel(
        stat.Panel()
        .title("Transactions per minute")
        .datasource(PROM_REF)
        .unit("opm")
        .span(6)
        .height(4)
        .with_target(prom_instant(f"sum(rate({TRANSACTIONS}[{WINDOW}])) * 60", "transactions"))
    )
    board.with_panel(
        stat.Panel()
        .title(f"Fraud rate (labelled, last {QUALITY_WINDOW})")
        .datasource(PROM_REF)
        .unit("percentunit")
        .decimals(2)
        .span(6)
        .height(4)
        .thresholds(thresholds(*FRAUD_RATE_STEPS))
        .with_target(prom_instant(FRAUD_RATE, "fraud rate"))
    )
    board.with_panel(
        stat.Panel()
        .title("Alerts per minute")
        .datasource(PROM_REF)
        .unit("opm")
        .span(6)
        .height(4)
        .with_target(prom_instant(f"{ALERT_RATE} * 60", "alerts"))
    )
    board.with_panel(
        stat.Panel()
        .title("Alerts in range")
        .datasource(ALERTS_REF)
        .unit("short")
        .reduce_options(common.ReduceDataOptions().calcs(["sum"]))
        .span(6)
        .height(4)
        .with_target(
            es_query(
                "detection_time",
                es.Count().id("1"),
                es.DateHistogram().id("2").field("detection_time"),
            )
        )
    )
    board.with_panel(
        series(
            "Transactions per minute, total and by category",
            "opm",
            promql(f"sum(rate({TRANSACTIONS}[{WINDOW}])) * 60", "all categories", "A"),
            promql(
                f"sum by (merchant_category) (rate({TRANSACTIONS}[{WINDOW}])) * 60",
                "{{merchant_category}}",
                "B",
            ),
        )
    )
    board.with_panel(
        es_series(
            "Transactions per minute by category (event time)",
            KPIS_REF,
            "short",
            es_query(
                "minute",
                es.Sum().id("1").field("transactions"),
                terms("3", "merchant_category", 10, "_term"),
                per_interval("2", "minute"),
            ),
        )
        .stacking(common.StackingConfig().mode(StackingMode.NORMAL))
        .fill_opacity(40)
    )
    board.with_panel(
        series(
            "Average ticket by category",
            "short",
            promql(
                f"sum by (merchant_category) (rate({AMOUNT}[{WINDOW}])) "
                f"/ sum by (merchant_category) (rate({TRANSACTIONS}[{WINDOW}]))",
                "{{merchant_category}}",
            ),
        ).decimals(2)
    )
    by_category = (terms("3", "merchant_category", 10, "_term"), per_interval("2", "minute"))
    board.with_panel(
        es_ratio(
            "Average ticket by category (event time)",
            KPIS_REF,
            "short",
            es_sums("A", KPIS_REF, "minute", "amount_total", "*", *by_category),
            es_sums("B", KPIS_REF, "minute", "transactions", "*", *by_category),
        ).decimals(2)
    )
    board.with_panel(
        series(
            "Fraud rate",
            "percentunit",
            promql(FRAUD_RATE, "labelled fraud / labelled transactions", "A"),
            promql(ALERTS_PER_TRANSACTION, "alerts / transactions", "B"),
        ).thresholds(thresholds(*FRAUD_RATE_STEPS))
    )
    board.with_panel(
        series(
            "Alerts per minute by rule",
            "opm",
            promql(ALERTS_BY_RULE, "{{rule}}"),
        ).stacking(common.StackingConfig().mode(StackingMode.NORMAL))
    )
    board.with_panel(
        table.Panel()
        .title("Top accounts by amount")
        .datasource(ACCOUNTS_REF)
        .span(8)
        .height(8)
        .with_target(
            es_query(
                "last_seen",
                [
                    es.Max().id("1").field("amount_total"),
                    es.Max().id("2").field("transactions"),
                    es.Max().id("3").field("alerts"),
                ],
                terms("4", "customer_id", 10, "1"),
            )
        )
    )
    board.with_panel(es_terms_table("Most-alerted accounts", "customer_id", "alerts").span(8))
    board.with_panel(es_terms_table("Most-alerted terminals", "terminal_id", "alerts").span(8))
    board.with_panel(
        table.Panel()
        .title("Latest alerts")
        .datasource(ALERTS_REF)
        .span(24)
        .height(8)
        .with_target(
            es_query(
                "detection_time",
                es.RawData().id("1").settings(es.ElasticsearchRawDataSettings().size("50")),
            )
        )
    )
    return board


def detection_quality() -> db.Dashboard:
    board = variables(
        dashboard(
            "fraud-detection-quality",
            "Detection quality",
            "Precision, recall and fraud rate from the alerts joined with the simulator's "
            "labels, alerts against labelled fraud, and the distribution of alert scores.",
            ["quality"],
        )
    )
    board.with_panel(
        series(
            "Precision per rule",
            "percentunit",
            promql(PRECISION_BY_RULE, "{{rule}}"),
        )
        .max(1)
        .thresholds(thresholds(*QUALITY_STEPS))
    )
    board.with_panel(
        series(
            "Recall, overall and per scenario",
            "percentunit",
            promql(RECALL, "all fraud", "A"),
            promql(RECALL_BY_SCENARIO, "{{scenario}}", "B"),
        )
        .max(1)
        .thresholds(thresholds(*QUALITY_STEPS))
    )
    per_rule = "rule:* AND NOT rule:any"
    board.with_panel(
        outcome_ratio(
            "Precision per rule (event time, 5 min)",
            f"{per_rule} AND outcome:{TP}",
            per_rule,
            "rule",
        ).thresholds(thresholds(*QUALITY_STEPS))
    )
    board.with_panel(
        outcome_ratio(
            "Recall per scenario (event time, 5 min)",
            f"rule:any AND outcome:{TP}",
            f"rule:any AND outcome:({TP} OR {FN})",
            "scenario",
        ).thresholds(thresholds(*QUALITY_STEPS))
    )
    board.with_panel(
        outcome_ratio(
            "Fraud rate (event time, 5 min)",
            f"rule:any AND outcome:({TP} OR {FN})",
            f"rule:any AND outcome:({TP} OR {FP} OR {FN} OR {TN})",
        ).thresholds(thresholds(*FRAUD_RATE_STEPS))
    )
    board.with_panel(
        table.Panel()
        .title("Labelled outcomes in range by rule")
        .datasource(OUTCOMES_REF)
        .span(12)
        .height(8)
        .with_target(
            es_query(
                "minute",
                es.Sum().id("1").field("transactions"),
                terms("2", "rule", 10, "_term"),
                terms("3", "outcome", 5, "_term"),
            )
        )
    )
    fraud = f'fraudsim_events_total{{{SEL}, kind="transaction", scenario!="none"}}'
    board.with_panel(
        series(
            "Alerts against labelled fraud",
            "opm",
            promql(f"{ALERT_RATE} * 60", "alerts", "A"),
            promql(f"sum(rate({fraud}[{WINDOW}])) * 60", "labelled fraudulent transactions", "B"),
        )
    )
    board.with_panel(
        series(
            "Alerts per labelled fraudulent transaction",
            "short",
            promql(f"{ALERT_RATE} / sum(rate({fraud}[{WINDOW}]))", "alerts per fraud"),
        ).thresholds(thresholds(*QUALITY_STEPS))
    )
    board.with_panel(
        series(
            "Labelled fraud per minute by scenario",
            "opm",
            promql(f"sum by (scenario) (rate({fraud}[{WINDOW}])) * 60", "{{scenario}}"),
        )
    )
    board.with_panel(
        series(
            "Alerts per minute by rule",
            "opm",
            promql(ALERTS_BY_RULE, "{{rule}}"),
        )
    )
    board.with_panel(
        barchart.Panel()
        .title("Alert score distribution")
        .datasource(ALERTS_REF)
        .span(12)
        .height(8)
        .unit("short")
        .with_target(
            es_query(
                "detection_time",
                es.Count().id("1"),
                es.Histogram()
                .id("2")
                .field("score")
                .settings(es.ElasticsearchHistogramSettings().interval("0.1").min_doc_count("0")),
            )
        )
    )
    board.with_panel(
        bargauge.Panel()
        .title("Average score by rule")
        .datasource(ALERTS_REF)
        .span(12)
        .height(8)
        .unit("percentunit")
        .min(0)
        .max(1)
        .thresholds(thresholds((None, "blue"), (0.8, "orange")))
        .with_target(
            es_query(
                "detection_time",
                es.Average().id("1").field("score"),
                terms("2", "rule", 20, "_term"),
            )
        )
    )
    return board


def summed(title: str, unit: str, metric: str, legend: str) -> timeseries.Panel:
    """A time series panel of `metric` summed over the selected pipeline's series."""
    return series(title, unit, promql(f"sum({metric}{{{SEL}}})", legend))


def pipeline_health() -> db.Dashboard:
    board = variables(
        dashboard(
            "fraud-pipeline-health",
            "Pipeline health",
            "Throughput, batch duration, latency, lag, accounts held and dead letters of the "
            "detection job, and the simulator's rate.",
            ["health"],
        )
    )

    def quantiles(metric: str, by: str = "") -> list[prom.Dataquery]:
        group = f"le{', ' + by if by else ''}"
        legend = f"p{{q}}{' {{' + by + '}}' if by else ''}"
        return [
            promql(
                f"histogram_quantile({q / 100}, sum by ({group}) "
                f"(rate({metric}_bucket{{{SEL}}}[{WINDOW}])))",
                legend.replace("{q}", str(q)),
                ref,
            )
            for q, ref in ((50, "A"), (95, "B"), (99, "C"))
        ]

    board.with_panel(
        series(
            "Input against processing rate",
            "rowsps",
            promql(
                f"sum by (query) (fraud_detection_input_rows_per_second{{{SEL}}})",
                "input {{query}}",
                "A",
            ),
            promql(
                f"sum by (query) (fraud_detection_processed_rows_per_second{{{SEL}}})",
                "processed {{query}}",
                "B",
            ),
        )
    )
    board.with_panel(
        series(
            "Micro-batch duration",
            "s",
            *quantiles("fraud_detection_batch_duration_seconds", "query")[:2],
        ).thresholds(thresholds(OK, (10, "orange"), (30, "red")))
    )
    board.with_panel(
        series(
            "Event-to-alert latency",
            "s",
            *quantiles("fraud_detection_event_to_alert_latency_seconds"),
        ).thresholds(thresholds(OK, (30, "orange"), (120, "red")))
    )
    board.with_panel(
        series(
            "Kafka consumer lag",
            "short",
            promql(
                f"sum by (query, topic) (fraud_detection_consumer_lag_records{{{SEL}}})",
                "{{query}}: {{topic}}",
            ),
        ).thresholds(thresholds(OK, (1000, "orange"), (10000, "red")))
    )
    board.with_panel(summed("Accounts held", "short", "fraud_detection_accounts_held", "accounts"))
    board.with_panel(
        summed(
            "Accounts' state as stored",
            "bytes",
            "fraud_detection_account_state_bytes",
            "packed state",
        )
    )
    board.with_panel(
        series(
            "Dead letters per second by reason",
            "ops",
            promql(
                f"sum by (reason) (rate(fraud_detection_dead_letters_total{{{SEL}}}[{WINDOW}]))",
                "{{reason}}",
            ),
        ).thresholds(thresholds(OK, (1, "red")))
    )
    board.with_panel(
        bargauge.Panel()
        .title("Dead letters in range by reason")
        .datasource(PROM_REF)
        .unit("short")
        .span(12)
        .height(8)
        .min(0)
        .thresholds(thresholds(OK, (1, "orange")))
        .with_target(
            prom_instant(
                "sum by (reason) "
                f"(increase(fraud_detection_dead_letters_total{{{SEL}}}[$__range]))",
                "{{reason}}",
            )
        )
    )
    board.with_panel(
        series(
            "Simulator events per second",
            "ops",
            promql(
                f"sum by (kind) (rate(fraudsim_events_total{{{SEL}}}[{WINDOW}]))", "{{kind}}", "A"
            ),
            promql(
                f"sum(fraudsim_target_transactions_per_second{{{SEL}}})", "target transactions", "B"
            ),
        )
    )
    board.with_panel(
        summed(
            "Simulator producer queue",
            "short",
            "fraudsim_producer_queue_messages",
            "queued messages",
        )
    )
    board.with_panel(
        series(
            "Simulator event time behind now",
            "s",
            promql(f"time() - max(fraudsim_event_time_seconds{{{SEL}}})", "behind"),
        )
    )
    return board


def operator() -> db.Dashboard:
    board = dashboard(
        "fraud-operator",
        "FraudPipeline operator",
        "Reconciles, errors, API writes and pipelines by phase of the FraudPipeline operator.",
        ["operator"],
    )
    board.with_panel(
        stat.Panel()
        .title("Pipelines by phase")
        .datasource(PROM_REF)
        .unit("short")
        .span(12)
        .height(5)
        .with_target(prom_instant("sum by (phase) (fraudpipeline_operator_pipelines)", "{{phase}}"))
    )
    board.with_panel(
        stat.Panel()
        .title("Reconcile errors (last hour)")
        .datasource(PROM_REF)
        .unit("short")
        .span(6)
        .height(5)
        .thresholds(thresholds(OK, (1, "red")))
        .with_target(
            prom_instant(
                "sum(increase(fraudpipeline_operator_reconcile_errors_total[1h]))", "errors"
            )
        )
    )
    board.with_panel(
        stat.Panel()
        .title("Queue depth")
        .datasource(PROM_REF)
        .unit("short")
        .span(6)
        .height(5)
        .thresholds(thresholds(OK, (10, "orange"), (100, "red")))
        .with_target(prom_instant("sum(fraudpipeline_operator_queue_depth)", "waiting"))
    )
    board.with_panel(
        series(
            "Reconciles per minute by result",
            "opm",
            promql(
                f"sum by (result) (rate(fraudpipeline_operator_reconciles_total[{WINDOW}])) * 60",
                "{{result}}",
            ),
        )
    )
    board.with_panel(
        series(
            "Reconcile errors per minute",
            "opm",
            promql(
                f"sum(rate(fraudpipeline_operator_reconcile_errors_total[{WINDOW}])) * 60", "errors"
            ),
        ).thresholds(thresholds(OK, (0.1, "red")))
    )
    board.with_panel(
        series(
            "Reconcile duration",
            "s",
            *(
                promql(
                    f"histogram_quantile({q / 100}, sum by (le) "
                    f"(rate(fraudpipeline_operator_reconcile_duration_seconds_bucket[{WINDOW}])))",
                    f"p{q}",
                    ref,
                )
                for q, ref in ((50, "A"), (95, "B"))
            ),
        ).thresholds(thresholds(OK, (5, "orange"), (30, "red")))
    )
    board.with_panel(
        series(
            "API writes per minute by verb and kind",
            "opm",
            promql(
                "sum by (verb, kind) "
                f"(rate(fraudpipeline_operator_api_writes_total[{WINDOW}])) * 60",
                "{{verb}} {{kind}}",
            ),
        )
    )
    return board


BUILDERS = {
    "fraud-overview.json": overview,
    "fraud-detection-quality.json": detection_quality,
    "fraud-pipeline-health.json": pipeline_health,
    "fraud-operator.json": operator,
}
