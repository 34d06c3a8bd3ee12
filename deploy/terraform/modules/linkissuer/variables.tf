variable "project_id" {
  description = "Project that holds the topics, subscriptions, service accounts and Cloud Run resources."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run worker pools or service."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name: topics NAME-objects, NAME-jobs, NAME-results, NAME-errors, NAME-dead-letter; service account NAME-worker."
  type        = string
  default     = "linkissuer"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name))
    error_message = "name: 1-20 characters of [a-z0-9-], starting with a letter (service account IDs are NAME-worker, at most 30 characters)."
  }
}

variable "image" {
  description = "Container image built from the repository's Dockerfile, e.g. REGION-docker.pkg.dev/PROJECT/REPO/linkissuer:TAG (pin a digest in production)."
  type        = string
}

variable "mode" {
  description = <<-EOT
    How the worker runs:
      pull - Cloud Run worker pools run `linkissuer worker` on pull subscriptions (exactly-once delivery);
      push - a Cloud Run service runs `linkissuer serve`; push subscriptions carry an OIDC token;
      gke  - no Cloud Run: pull subscriptions plus the Workload Identity binding for deploy/k8s.
  EOT
  type        = string
  default     = "pull"

  validation {
    condition     = contains(["pull", "push", "gke"], var.mode)
    error_message = "mode must be pull, push or gke."
  }
}

variable "sources" {
  description = <<-EOT
    Buckets whose new objects get links, each with object-name prefixes ("" for the whole bucket).
    Each (bucket, prefix) gets an OBJECT_FINALIZE notification and an allow rule BUCKET/PREFIX**.
    The worker's service account gets read access (and write access if methods include upload
    methods) on each bucket: a signed URL can do only what its signer may do. The buckets must be in
    project_id: notifications are published by that project's Cloud Storage service agent.
  EOT
  type = list(object({
    bucket   = string
    prefixes = optional(list(string), [""])
  }))

  validation {
    condition     = length(var.sources) > 0
    error_message = "sources: name at least one bucket."
  }
  validation {
    condition = alltrue(flatten([
      for s in var.sources : [for p in s.prefixes : !can(regex("[*?]", p)) && !startswith(p, "/")]
    ]))
    error_message = "sources: prefixes are literal object-name prefixes: no '*', '?' or leading '/'."
  }
}

variable "extra_allow" {
  description = "More policy rules (BUCKET or BUCKET/GLOB) appended to LINKISSUER_ALLOW, e.g. for buckets that bulk jobs sign but that send no notifications. Grant their IAM yourself."
  type        = list(string)
  default     = []
}

variable "manifest_bucket" {
  description = "Bucket that bulk export jobs write manifests to (the bucket of a job's output.manifest.uri). The worker gets roles/storage.objectUser on it: jobs create, read, list, overwrite and delete their parts. Empty: no manifest access is granted."
  type        = string
  default     = ""
}

variable "methods" {
  description = "Methods that may be signed (LINKISSUER_METHODS)."
  type        = list(string)
  default     = ["GET"]

  validation {
    condition     = length(var.methods) > 0 && alltrue([for m in var.methods : contains(["GET", "HEAD", "PUT", "POST", "DELETE", "RESUMABLE"], m)])
    error_message = "methods: GET, HEAD, PUT, POST, DELETE or RESUMABLE, upper case."
  }
}

variable "default_expiry" {
  description = "Lifetime of a link whose request names none (LINKISSUER_DEFAULT_EXPIRY, a Go duration)."
  type        = string
  default     = "15m"

  validation {
    condition     = can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.default_expiry)) && var.default_expiry != ""
    error_message = "default_expiry: a duration such as 15m, 1h or 90s."
  }
}

variable "max_expiry" {
  description = "Longest lifetime granted (LINKISSUER_MAX_EXPIRY). Keyless signing allows at most 12h; the binary refuses to start above what its signer allows."
  type        = string
  default     = "1h"

  validation {
    condition     = can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.max_expiry)) && var.max_expiry != ""
    error_message = "max_expiry: a duration such as 1h, 30m or 12h."
  }
}

variable "min_instances" {
  description = "Fewest instances of the objects worker pool (pull) or of the service (push)."
  type        = number
  default     = 1
}

variable "max_instances" {
  description = "Most instances of the objects worker pool (pull) or of the service (push). With the jobs pool it divides the signBlob quota: see signblob_quota_per_second."
  type        = number
  default     = 3

  validation {
    condition     = var.max_instances >= 1 && var.max_instances >= var.min_instances
    error_message = "max_instances must be at least 1 and at least min_instances."
  }
}

variable "enable_jobs" {
  description = "Create the jobs subscription and, in pull mode, a worker pool for bulk export jobs (linkissuer.job.v1 messages on NAME-jobs)."
  type        = bool
  default     = true
}

variable "jobs_instances" {
  description = "Instances of the jobs worker pool (pull mode). Shards of one job spread over them."
  type        = number
  default     = 1

  validation {
    condition     = var.jobs_instances >= 1
    error_message = "jobs_instances must be at least 1 (0 would leave jobs unprocessed)."
  }
}

variable "signblob_quota_per_second" {
  description = "IAM Credentials signBlob quota of the project, per second (default quota: 60,000 per minute). Every instance gets --sign-rate-ceiling = floor(quota / total max instances), so the fleet at full size stays inside it."
  type        = number
  default     = 1000
}

variable "sign_in_flight" {
  description = "signBlob calls in flight per instance (LINKISSUER_SIGN_IN_FLIGHT). Needs at least ceiling x p99 signBlob latency: 64 covers 333/s at 190 ms."
  type        = number
  default     = 64
}

variable "cpu" {
  description = "CPU limit per instance. Keyless signing costs the instance well under 1 ms of CPU per link (BENCHMARKS.md): 1 vCPU covers the whole default quota."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit per instance. Flow control holds at most 64 MiB of messages (--max-outstanding-bytes)."
  type        = string
  default     = "512Mi"
}

variable "log_level" {
  description = "LINKISSUER_LOG_LEVEL: debug, info, warn or error."
  type        = string
  default     = "info"
}

variable "ack_deadline_seconds" {
  description = "Ack deadline of the pull subscriptions. The client extends leases while a message is processed, so this bounds only how soon a message held by a dead instance is redelivered."
  type        = number
  default     = 60
}

variable "push_ack_deadline_seconds" {
  description = "Ack deadline of the push subscriptions, also the Cloud Run request timeout; the handler timeout is 10 s less."
  type        = number
  default     = 60

  validation {
    condition     = var.push_ack_deadline_seconds >= 20 && var.push_ack_deadline_seconds <= 600
    error_message = "push_ack_deadline_seconds: 20 to 600."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries before Pub/Sub moves a message to the dead-letter topic (5-100). Only transient failures are redelivered: bad input is dead-lettered by the worker itself on the errors topic."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts: 5 to 100."
  }
}

variable "retry_minimum_backoff" {
  description = "Pub/Sub's shortest redelivery delay after a nack."
  type        = string
  default     = "10s"
}

variable "retry_maximum_backoff" {
  description = "Pub/Sub's longest redelivery delay after a nack."
  type        = string
  default     = "600s"
}

variable "message_retention" {
  description = "How long unacknowledged messages are kept on the subscriptions."
  type        = string
  default     = "604800s"
}

variable "concurrency" {
  description = "Push mode: requests per instance. Keep it at or below the push server's in-flight bound (100), beyond which it answers 429."
  type        = number
  default     = 80

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 100
    error_message = "concurrency: 1 to 100."
  }
}

variable "push_auth" {
  description = <<-EOT
    Push mode: who checks the push OIDC token.
      app      - the service verifies it (signature, audience, the push service account's email);
                 Cloud Run's invoker check is off, because Cloud Run strips the signature of tokens
                 it has checked and the app could then verify nothing.
      platform - Cloud Run's IAM invoker check admits only the push service account, and the app
                 runs with --insecure-skip-auth. Use it where invoker_iam_disabled is not allowed.
  EOT
  type        = string
  default     = "app"

  validation {
    condition     = contains(["app", "platform"], var.push_auth)
    error_message = "push_auth must be app or platform."
  }
}

variable "push_ingress" {
  description = "Push mode: Cloud Run ingress. Pub/Sub push from the same project counts as internal traffic."
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
}

variable "extra_publish_topics" {
  description = "Full topic IDs (projects/P/topics/T) that jobs may publish to: their output.topic and notify_topic. The worker gets roles/pubsub.publisher on each."
  type        = list(string)
  default     = []
}

variable "gke_workload_identity" {
  description = "mode = gke: the Kubernetes namespace and service account (deploy/k8s) bound to the worker's Google service account."
  type = object({
    namespace       = string
    service_account = string
  })
  default = {
    namespace       = "linkissuer"
    service_account = "linkissuer"
  }
}

variable "keda_workload_identity" {
  description = "mode = gke: KEDA operator's namespace and service account; they get a Google service account with roles/monitoring.viewer to query Managed Prometheus. null: none."
  type = object({
    namespace       = string
    service_account = string
  })
  default = {
    namespace       = "keda"
    service_account = "keda-operator"
  }
}

variable "enable_apis" {
  description = "Enable the APIs the deployment uses (never disabled on destroy)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the Cloud Run resources from terraform destroy."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels for every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "audit" {
  description = "Record every issued link (linkissuer.audit.v1) on NAME-audit and in BigQuery (dataset audit_dataset, table links)."
  type        = bool
  default     = true
}

variable "audit_fail_closed" {
  description = "Withhold a link whose audit record cannot be published (the message is redelivered, the sync API answers 503)."
  type        = bool
  default     = false
}

variable "audit_location" {
  description = "BigQuery location of the audit dataset."
  type        = string
  default     = "US"
}

variable "audit_dataset" {
  description = "BigQuery dataset of the audit table (letters, digits and underscores)."
  type        = string
  default     = "linkissuer_audit"
}
