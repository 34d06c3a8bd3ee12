# GCS -> Pub/Sub: every finalized object under a configured prefix is
# announced on NAME-objects with its storage#object metadata (JSON_API_V1),
# which the worker reads (schema.ParseGCSNotification). Deletes, metadata
# updates and archives are not subscribed to; the worker would ignore them.

# Cloud Storage publishes notifications as its per-project service agent
# (service-PROJECT_NUMBER@gs-project-accounts.iam.gserviceaccount.com);
# reading it through this data source also creates it if it does not exist.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_pubsub_topic_iam_member" "gcs_publishes_objects" {
  project = var.project_id
  topic   = google_pubsub_topic.objects.id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "objects" {
  for_each = local.notifications

  bucket             = each.value.bucket
  payload_format     = "JSON_API_V1"
  topic              = google_pubsub_topic.objects.id
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = each.value.prefix == "" ? null : each.value.prefix

  # GCS checks that it may publish when the notification is created.
  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_objects]
}
