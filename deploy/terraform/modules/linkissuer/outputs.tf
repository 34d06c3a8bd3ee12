output "service_account_email" {
  description = "The worker's service account: it signs the URLs (keyless), so it is the GoogleAccessId of every link."
  value       = google_service_account.worker.email
}

output "topics" {
  description = "Topic IDs by role."
  value = {
    objects     = google_pubsub_topic.objects.id
    jobs        = google_pubsub_topic.jobs.id
    results     = google_pubsub_topic.results.id
    errors      = google_pubsub_topic.errors.id
    dead_letter = google_pubsub_topic.dead_letter.id
  }
}

output "subscriptions" {
  description = "The worker's input subscriptions by input (objects, jobs)."
  value       = { for k, s in google_pubsub_subscription.work : k => s.id }
}

output "allow_rules" {
  description = "LINKISSUER_ALLOW, one rule per element."
  value       = local.allow_rules
}

output "sign_rate_ceiling" {
  description = "signBlob calls per second each instance may make (--sign-rate-ceiling)."
  value       = local.sign_rate_ceiling
}

output "worker_env" {
  description = "Environment of `linkissuer worker` per input: the values for deploy/k8s/base/configmap.yaml in gke mode."
  value       = local.pull_env
}

output "push_url" {
  description = "Push mode: the service URL (null otherwise)."
  value       = var.mode == "push" ? google_cloud_run_v2_service.push[0].uri : null
}

output "keda_service_account_email" {
  description = "gke mode: the account to annotate KEDA's operator service account with (null otherwise)."
  value       = length(google_service_account.keda) > 0 ? google_service_account.keda[0].email : null
}
