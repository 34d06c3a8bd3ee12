# Cloud Monitoring: one dashboard and the alert policies an operator needs.
# Every panel is PromQL, so the same queries serve Grafana
# (deploy/grafana/linkissuer.json). linkissuer_* metrics reach Cloud
# Monitoring through Managed Service for Prometheus (GKE: a PodMonitoring on
# /metrics; Cloud Run: the managed Prometheus sidecar); the Pub/Sub backlog
# comes from Pub/Sub's own metrics and needs nothing. deploy/monitoring_test.go
# checks that every linkissuer_* metric named here exists in the worker.

variable "enable_monitoring" {
  description = "Create the Cloud Monitoring dashboard and alert policies."
  type        = bool
  default     = true
}

variable "enable_tracing" {
  description = "Run the worker with --trace (OpenTelemetry spans to Cloud Trace) and grant its account roles/cloudtrace.agent."
  type        = bool
  default     = false
}

# --trace exports spans with the worker's own account.
resource "google_project_iam_member" "worker_trace_agent" {
  count = var.enable_tracing ? 1 : 0

  project = var.project_id
  role    = "roles/cloudtrace.agent"
  member  = google_service_account.worker.member
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel IDs the alert policies notify (empty: alerts open incidents without notifying)."
  type        = list(string)
  default     = []
}

variable "alert_backlog_age_seconds" {
  description = "Alert when the oldest unacked message of a worker subscription is older than this."
  type        = number
  default     = 600
}

locals {
  # Panels, by key: title and PromQL. Alerts below reuse them.
  panels = {
    backlog_age = {
      title = "Backlog age: oldest unacked message (s)"
      query = "max by (subscription_id) (pubsub_googleapis_com:subscription_oldest_unacked_message_age{monitored_resource=\"pubsub_subscription\",subscription_id=~\"${var.name}-.*\"})"
    }
    dead_letters = {
      title = "Dead letters by reason (/s)"
      query = "sum by (reason) (rate(linkissuer_messages_total{outcome=\"dead_letter\"}[5m]))"
    }
    throttled_share = {
      title = "signBlob 429 share"
      query = "sum(rate(linkissuer_signer_throttled_total[5m])) / clamp_min(sum(rate(linkissuer_signer_calls_total[5m])), 1e-9)"
    }
    signer_errors = {
      title = "Signatures failed (/s)"
      query = "sum(rate(linkissuer_signatures_total{result=\"failed\"}[5m]))"
    }
    link_latency = {
      title = "Link latency p99: receipt to ack (s)"
      query = "histogram_quantile(0.99, sum by (le) (rate(linkissuer_message_seconds_bucket{outcome=\"issued\"}[5m])))"
    }
    messages = {
      title = "Messages by outcome (/s)"
      query = "sum by (outcome) (rate(linkissuer_messages_total[5m]))"
    }
    publish_errors = {
      title = "Publish errors by topic (/s)"
      query = "sum by (topic) (rate(linkissuer_published_total{result=\"error\"}[5m]))"
    }
    sign_latency = {
      title = "signBlob call latency p99 (s)"
      query = "histogram_quantile(0.99, sum by (le) (rate(linkissuer_signer_call_seconds_bucket[5m])))"
    }
  }

  alerts = {
    backlog_age = {
      display = "linkissuer: backlog older than ${var.alert_backlog_age_seconds}s"
      query   = "${local.panels.backlog_age.query} > ${var.alert_backlog_age_seconds}"
      doc     = "Workers are not keeping up, or not running. Check the worker's /readyz and logs (a failed preflight exits with the fix), and `linkissuer doctor`."
    }
    dead_letters = {
      display = "linkissuer: messages dead-lettered"
      query   = "${local.panels.dead_letters.query} > 0.1"
      doc     = "Messages go to the errors topic with a reason (the reason label). Read a few from the errors topic; policy refusals mean --allow does not cover what arrives."
    }
    throttled_share = {
      display = "linkissuer: signBlob throttled (429) above 20%"
      query   = "${local.panels.throttled_share.query} > 0.2"
      doc     = "The IAM Credentials signBlob quota is the bottleneck: lower --sign-rate-ceiling per instance, or ask for more quota."
    }
    signer_errors = {
      display = "linkissuer: signatures failing"
      query   = "${local.panels.signer_errors.query} > 0"
      doc     = "signBlob fails after its retries. A 403 means the worker account lost roles/iam.serviceAccountTokenCreator on itself: run `linkissuer doctor`."
    }
    link_latency = {
      display = "linkissuer: link latency p99 above 10s"
      query   = "${local.panels.link_latency.query} > 10"
      doc     = "Links take long from receipt to ack: signBlob latency or throttling, or publish latency. See the dashboard's signer panels."
    }
  }
}

resource "google_monitoring_dashboard" "linkissuer" {
  count   = var.enable_monitoring ? 1 : 0
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "linkissuer (${var.name})"
    mosaicLayout = {
      columns = 12
      tiles = [
        for i, key in sort(keys(local.panels)) : {
          xPos   = (i % 2) * 6
          yPos   = floor(i / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = local.panels[key].title
            xyChart = {
              dataSets = [{
                plotType        = "LINE"
                timeSeriesQuery = { prometheusQuery = local.panels[key].query }
              }]
            }
          }
        }
      ]
    }
  })
}

resource "google_monitoring_alert_policy" "linkissuer" {
  for_each              = var.enable_monitoring ? local.alerts : {}
  project               = var.project_id
  display_name          = each.value.display
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = var.labels

  conditions {
    display_name = each.value.display
    condition_prometheus_query_language {
      query    = each.value.query
      duration = "300s"
    }
  }

  documentation {
    content   = each.value.doc
    mime_type = "text/markdown"
  }
}
