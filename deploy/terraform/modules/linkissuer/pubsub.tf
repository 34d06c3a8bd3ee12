# Topics:
#   NAME-objects      GCS OBJECT_FINALIZE notifications (JSON_API_V1)       -> worker
#   NAME-jobs         linkissuer.job.v1: submitted jobs and their shards     -> worker
#   NAME-results      linkissuer.link.v1, one per issued link                -> your consumers
#   NAME-errors       linkissuer.deadletter.v1: bad input, policy refusals   -> NAME-errors-hold
#   NAME-dead-letter  messages that failed max_delivery_attempts times       -> NAME-dead-letter-hold
#
# Two kinds of failure, two topics: the worker itself dead-letters what can
# never succeed (with a reason) on NAME-errors and acks it; what keeps
# failing transiently is moved by Pub/Sub to NAME-dead-letter.

resource "google_pubsub_topic" "objects" {
  project = var.project_id
  name    = local.names.topic_objects
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "jobs" {
  project = var.project_id
  name    = local.names.topic_jobs
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "results" {
  project = var.project_id
  name    = local.names.topic_results
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "errors" {
  project = var.project_id
  name    = local.names.topic_errors
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  project = var.project_id
  name    = local.names.topic_dead_letter
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

# The worker's input subscriptions: pull with exactly-once delivery (pull
# and gke modes), or push with an OIDC token (push mode).
resource "google_pubsub_subscription" "work" {
  for_each = local.inputs

  project = var.project_id
  name    = each.value.subscription
  topic   = each.value.topic == "objects" ? google_pubsub_topic.objects.id : google_pubsub_topic.jobs.id
  labels  = var.labels

  ack_deadline_seconds       = var.mode == "push" ? var.push_ack_deadline_seconds : var.ack_deadline_seconds
  message_retention_duration = var.message_retention
  # Exactly-once delivery is a pull feature: an ack that succeeded is never
  # followed by a redelivery (dedupe_key absorbs the rest).
  enable_exactly_once_delivery = var.mode != "push"

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expire, however long the worker is idle
  }

  dynamic "push_config" {
    for_each = var.mode == "push" ? [1] : []
    content {
      push_endpoint = "${google_cloud_run_v2_service.push[0].uri}/pubsub/push"
      oidc_token {
        service_account_email = google_service_account.push[0].email
        audience              = local.push_audience
      }
    }
  }
}

# A topic without a subscription drops what is published to it: these keep
# refused and dead-lettered messages for inspection and replay.
resource "google_pubsub_subscription" "hold" {
  for_each = {
    (local.names.sub_errors_hold)      = google_pubsub_topic.errors.id
    (local.names.sub_dead_letter_hold) = google_pubsub_topic.dead_letter.id
  }

  project                    = var.project_id
  name                       = each.key
  topic                      = each.value
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# The worker publishes links, refusals and job shards.
resource "google_pubsub_topic_iam_member" "worker_publishes" {
  for_each = {
    results = google_pubsub_topic.results.id
    errors  = google_pubsub_topic.errors.id
    jobs    = google_pubsub_topic.jobs.id
  }

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = google_service_account.worker.member
}

# Topics that jobs name for their output and completion messages.
resource "google_pubsub_topic_iam_member" "worker_publishes_extra" {
  for_each = toset(var.extra_publish_topics)

  topic  = each.value
  role   = "roles/pubsub.publisher"
  member = google_service_account.worker.member
}

resource "google_pubsub_subscription_iam_member" "worker_subscribes" {
  for_each = { for k, s in google_pubsub_subscription.work : k => s.name if var.mode != "push" }

  project      = var.project_id
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.worker.member
}

# Dead-lettering is done by Pub/Sub's own service agent: it must be able to
# publish to the dead-letter topic and to ack the message on the source
# subscription, or messages are redelivered forever.
resource "google_pubsub_topic_iam_member" "pubsub_agent_dead_letter" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.id
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_source" {
  for_each = { for k, s in google_pubsub_subscription.work : k => s.name }

  project      = var.project_id
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
