# Cloud Run. Pull mode: one worker pool per input subscription, each running
# `linkissuer worker` (worker pools have no URL and no request billing; the
# instance pulls). Push mode: one service running `linkissuer serve`, which
# Pub/Sub calls with an OIDC token.
#
# Probes go to the ops endpoints every mode serves on port 8080: startup on
# /readyz (clients built), liveness on /healthz.

locals {
  container_port = 8080
  probe = {
    startup  = "/readyz"
    liveness = "/healthz"
  }
  ceiling_arg = "--sign-rate-ceiling=${local.sign_rate_ceiling}"
}

resource "google_cloud_run_v2_worker_pool" "worker" {
  for_each = { for k, w in local.workloads : k => w if var.mode == "pull" }

  project             = var.project_id
  name                = "${var.name}-${each.key}"
  location            = var.region
  labels              = var.labels
  deletion_protection = var.deletion_protection

  # CPU-based autoscaling between min and max; min == max is a fixed size.
  # Backlog-based scaling needs an external autoscaler (Cloud Run External
  # Metrics Autoscaling) in manual mode; see deploy/README.md.
  scaling {
    scaling_mode          = each.value.min == each.value.max ? "MANUAL" : "AUTOMATIC"
    manual_instance_count = each.value.min == each.value.max ? each.value.min : null
    min_instance_count    = each.value.min == each.value.max ? null : each.value.min
    max_instance_count    = each.value.min == each.value.max ? null : each.value.max
  }

  template {
    service_account = google_service_account.worker.email
    labels          = var.labels

    containers {
      image = var.image
      args  = ["worker", local.ceiling_arg]

      dynamic "env" {
        for_each = local.pull_env[each.key]
        content {
          name  = env.key
          value = env.value
        }
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
      }

      startup_probe {
        http_get {
          path = local.probe.startup
          port = local.container_port
        }
        period_seconds    = 2
        timeout_seconds   = 1
        failure_threshold = 30
      }

      liveness_probe {
        http_get {
          path = local.probe.liveness
          port = local.container_port
        }
        period_seconds    = 10
        timeout_seconds   = 2
        failure_threshold = 3
      }
    }
  }

  depends_on = [
    google_service_account_iam_member.worker_signs_as_itself,
    google_pubsub_subscription_iam_member.worker_subscribes,
    google_pubsub_topic_iam_member.worker_publishes,
  ]
}

# Push mode: the identity Pub/Sub puts in the OIDC token of every push.
resource "google_service_account" "push" {
  count = var.mode == "push" ? 1 : 0

  project      = var.project_id
  account_id   = local.names.push_account
  display_name = "linkissuer push subscriptions (OIDC token identity)"

  depends_on = [google_project_service.apis]
}

# Pub/Sub mints the push tokens as the push account. Projects created before
# April 2021 need this grant; later ones have it implicitly. Scoped to the
# one account.
resource "google_service_account_iam_member" "pubsub_agent_mints_push_tokens" {
  count = var.mode == "push" ? 1 : 0

  service_account_id = google_service_account.push[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_cloud_run_v2_service" "push" {
  count = var.mode == "push" ? 1 : 0

  project             = var.project_id
  name                = local.names.service
  location            = var.region
  labels              = var.labels
  deletion_protection = var.deletion_protection
  ingress             = var.push_ingress

  # push_auth = app: the app verifies the token itself (signature, issuer,
  # audience, email), so Cloud Run's check is off; with it on, Cloud Run
  # would strip the token's signature before the app sees it.
  invoker_iam_disabled = var.push_auth == "app"
  # push_auth = platform: Cloud Run accepts tokens for this audience.
  custom_audiences = [local.push_audience]

  template {
    service_account                  = google_service_account.worker.email
    labels                           = var.labels
    timeout                          = "${var.push_ack_deadline_seconds}s"
    max_instance_request_concurrency = var.concurrency

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image
      args  = concat(["serve", local.ceiling_arg], var.push_auth == "platform" ? ["--insecure-skip-auth"] : [])

      ports {
        container_port = local.container_port
      }

      dynamic "env" {
        for_each = local.push_env
        content {
          name  = env.key
          value = env.value
        }
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        # Work happens inside requests: Pub/Sub waits for the status code,
        # which the service returns after the link is published.
        cpu_idle          = true
        startup_cpu_boost = true
      }

      startup_probe {
        http_get {
          path = local.probe.startup
          port = local.container_port
        }
        period_seconds    = 2
        timeout_seconds   = 1
        failure_threshold = 30
      }

      liveness_probe {
        http_get {
          path = local.probe.liveness
          port = local.container_port
        }
        period_seconds    = 10
        timeout_seconds   = 2
        failure_threshold = 3
      }
    }
  }

  depends_on = [
    google_service_account_iam_member.worker_signs_as_itself,
    google_pubsub_topic_iam_member.worker_publishes,
  ]
}

# The push account may invoke the service: required with push_auth =
# platform, and kept with app so that switching modes never refuses pushes.
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  count = var.mode == "push" ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.push[0].name
  role     = "roles/run.invoker"
  member   = google_service_account.push[0].member
}
