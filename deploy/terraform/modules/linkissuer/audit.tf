# Audit trail: one linkissuer.audit.v1 record per issued link and per durable
# link created (who asked, for what, signed by whom, and the URL's or the
# token's fingerprint; never the URL, its signature or the token) on
# NAME-audit, written by a Pub/Sub BigQuery subscription to DATASET.links, so
# that "who got a link to X since T" is one query:
#
#   SELECT publish_time, path, outcome, caller, caller_subject, caller_issuer,
#          subscription, source_message_id, job_id, submitter, token_id,
#          generation, method, expires_at, signer_identity, fingerprint
#   FROM `PROJECT.AUDIT_DATASET.links`  -- audit_dataset, default linkissuer_audit
#   WHERE bucket = 'example-media' AND object = 'reports/q3.pdf'
#     AND publish_time >= TIMESTAMP '2026-01-01'
#   ORDER BY publish_time
#
# The table's columns are the record's fields (use_table_schema) plus the
# subscription's metadata (write_metadata: subscription_name, message_id,
# publish_time, attributes); deploy's TestAuditTableMatchesSchema holds them
# to schema/jsonschema/linkissuer.audit.v1.json. It is partitioned by
# publish_time.

locals {
  audit_env = var.audit ? {
    LINKISSUER_AUDIT_TOPIC       = google_pubsub_topic.audit[0].name
    LINKISSUER_AUDIT_FAIL_CLOSED = tostring(var.audit_fail_closed)
  } : {}

  audit_columns = [
    { name = "record_id", type = "STRING", mode = "REQUIRED" },
    { name = "issued_at", type = "TIMESTAMP", mode = "REQUIRED" },
    { name = "path", type = "STRING", mode = "REQUIRED" },
    { name = "outcome", type = "STRING", mode = "REQUIRED" },
    { name = "reason", type = "STRING", mode = "NULLABLE" },
    { name = "caller", type = "STRING", mode = "NULLABLE" },
    { name = "caller_subject", type = "STRING", mode = "NULLABLE" },
    { name = "caller_issuer", type = "STRING", mode = "NULLABLE" },
    { name = "subscription", type = "STRING", mode = "NULLABLE" },
    { name = "source_message_id", type = "STRING", mode = "NULLABLE" },
    { name = "job_id", type = "STRING", mode = "NULLABLE" },
    { name = "submitter", type = "STRING", mode = "NULLABLE" },
    { name = "token_id", type = "STRING", mode = "NULLABLE" },
    { name = "bucket", type = "STRING", mode = "REQUIRED" },
    { name = "object", type = "STRING", mode = "REQUIRED" },
    { name = "generation", type = "INTEGER", mode = "REQUIRED" },
    { name = "method", type = "STRING", mode = "REQUIRED" },
    { name = "signed_headers", type = "STRING", mode = "REPEATED" },
    {
      name = "response_params", type = "RECORD", mode = "REPEATED",
      fields = [
        { name = "name", type = "STRING", mode = "REQUIRED" },
        { name = "value", type = "STRING", mode = "REQUIRED" },
      ]
    },
    { name = "expires_at", type = "TIMESTAMP", mode = "REQUIRED" },
    { name = "signer_identity", type = "STRING", mode = "REQUIRED" },
    { name = "signer_kind", type = "STRING", mode = "REQUIRED" },
    { name = "key_id", type = "STRING", mode = "NULLABLE" },
    { name = "fingerprint", type = "STRING", mode = "REQUIRED" },
    # write_metadata columns.
    { name = "subscription_name", type = "STRING", mode = "NULLABLE" },
    { name = "message_id", type = "STRING", mode = "NULLABLE" },
    { name = "publish_time", type = "TIMESTAMP", mode = "NULLABLE" },
    { name = "attributes", type = "STRING", mode = "NULLABLE" },
  ]
}

resource "google_pubsub_topic" "audit" {
  count = var.audit ? 1 : 0

  project = var.project_id
  name    = local.names.topic_audit
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic_iam_member" "worker_publishes_audit" {
  count = var.audit ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.audit[0].id
  role    = "roles/pubsub.publisher"
  member  = google_service_account.worker.member
}

resource "google_bigquery_dataset" "audit" {
  count = var.audit ? 1 : 0

  project    = var.project_id
  dataset_id = var.audit_dataset
  location   = var.audit_location
  labels     = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_bigquery_table" "audit" {
  count = var.audit ? 1 : 0

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.audit[0].dataset_id
  table_id            = "links"
  labels              = var.labels
  deletion_protection = true
  schema              = jsonencode(local.audit_columns)
  clustering          = ["bucket", "object"]

  time_partitioning {
    type  = "DAY"
    field = "publish_time"
  }
}

# Pub/Sub's service agent writes the table.
resource "google_bigquery_dataset_iam_member" "pubsub_writes_audit" {
  count = var.audit ? 1 : 0

  project    = var.project_id
  dataset_id = google_bigquery_dataset.audit[0].dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.pubsub_agent
}

resource "google_pubsub_subscription" "audit_bigquery" {
  count = var.audit ? 1 : 0

  project = var.project_id
  name    = "${local.names.topic_audit}-bigquery"
  topic   = google_pubsub_topic.audit[0].id
  labels  = var.labels

  bigquery_config {
    table            = "${var.project_id}.${google_bigquery_table.audit[0].dataset_id}.${google_bigquery_table.audit[0].table_id}"
    use_table_schema = true
    write_metadata   = true
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_bigquery_dataset_iam_member.pubsub_writes_audit]
}
