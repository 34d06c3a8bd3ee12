# linkissuer, keyless from end to end: one service account signs its own
# URLs through IAM Credentials signBlob (roles/iam.serviceAccountTokenCreator
# on itself), and no key is ever created. See deploy/README.md.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Every name in one place. deploy/k8s uses the names these give for the
  # default var.name, and deploy/terraform_test.go (TestTerraformNames)
  # checks that they agree.
  names = {
    worker_account       = "${var.name}-worker"
    push_account         = "${var.name}-push"
    keda_account         = "${var.name}-keda"
    topic_objects        = "${var.name}-objects"
    topic_jobs           = "${var.name}-jobs"
    topic_results        = "${var.name}-results"
    topic_errors         = "${var.name}-errors"
    topic_dead_letter    = "${var.name}-dead-letter"
    topic_audit          = "${var.name}-audit"
    sub_objects          = "${var.name}-objects-worker"
    sub_jobs             = "${var.name}-jobs-worker"
    sub_errors_hold      = "${var.name}-errors-hold"
    sub_dead_letter_hold = "${var.name}-dead-letter-hold"
    service              = "${var.name}-push"
  }

  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # One (bucket, prefix) pair per notification and allow rule. A prefix
  # becomes PREFIX** ('**' crosses '/'), the empty prefix the whole bucket.
  source_pairs = flatten([
    for s in var.sources : [for p in s.prefixes : { bucket = s.bucket, prefix = p }]
  ])
  notifications  = { for p in local.source_pairs : "${p.bucket}/${p.prefix}" => p }
  source_buckets = toset([for s in var.sources : s.bucket])
  allow_rules = concat(
    [for p in local.source_pairs : p.prefix == "" ? p.bucket : "${p.bucket}/${p.prefix}**"],
    var.extra_allow,
  )

  # A signed URL can do only what its signer may do: read for GET and HEAD
  # (and for jobs, which list the bucket), create for uploads, delete for
  # DELETE. objectCreator lets an upload link create an object, not replace
  # one (replacing needs delete): allow DELETE too, or grant objectUser
  # yourself, if upload links must overwrite.
  reads   = var.enable_jobs || length(setintersection(toset(var.methods), toset(["GET", "HEAD"]))) > 0
  uploads = length(setintersection(toset(var.methods), toset(["PUT", "POST", "RESUMABLE"]))) > 0
  source_roles = toset(compact([
    local.reads ? "roles/storage.objectViewer" : "",
    local.uploads ? "roles/storage.objectCreator" : "",
    contains(var.methods, "DELETE") ? "roles/storage.objectUser" : "",
  ]))
  source_grants = {
    for pair in setproduct(local.source_buckets, local.source_roles) : "${pair[0]} ${pair[1]}" => {
      bucket = pair[0]
      role   = pair[1]
    }
  }

  # The inputs: GCS notifications, and bulk export jobs (published by
  # `linkissuer submit`, and shards published back by the worker).
  all_inputs = {
    objects = { topic = "objects", subscription = local.names.sub_objects }
    jobs    = { topic = "jobs", subscription = local.names.sub_jobs }
  }
  inputs = { for k, v in local.all_inputs : k => v if k == "objects" || var.enable_jobs }

  # Pull mode runs one worker pool per input subscription: `linkissuer
  # worker` pulls one subscription. min == max means manual scaling.
  workloads = {
    for k, v in local.inputs : k => {
      min = k == "objects" ? var.min_instances : var.jobs_instances
      max = k == "objects" ? var.max_instances : var.jobs_instances
    }
  }

  # The signBlob quota is the project's: divide it by the most instances
  # that can run at once, so the fleet at full size stays inside it (each
  # instance's limiter still backs off on 429 during rollouts).
  max_fleet         = var.mode == "push" ? var.max_instances : sum([for w in values(local.workloads) : w.max])
  sign_rate_ceiling = max(1, floor(var.signblob_quota_per_second / local.max_fleet))

  # Environment shared by `worker` and `serve`: exactly the variables the
  # binary reads (`linkissuer worker -h`). Keyless: LINKISSUER_SERVICE_ACCOUNT
  # signs through signBlob; no key file or HMAC secret exists.
  common_env = merge(local.audit_env, var.enable_tracing ? { LINKISSUER_TRACE = "true" } : {}, {
    GOOGLE_CLOUD_PROJECT       = var.project_id
    LINKISSUER_RESULTS_TOPIC   = google_pubsub_topic.results.name
    LINKISSUER_ERRORS_TOPIC    = google_pubsub_topic.errors.name
    LINKISSUER_JOBS_TOPIC      = google_pubsub_topic.jobs.name
    LINKISSUER_SERVICE_ACCOUNT = google_service_account.worker.email
    LINKISSUER_ALLOW           = join(",", local.allow_rules)
    LINKISSUER_METHODS         = join(",", var.methods)
    LINKISSUER_DEFAULT_EXPIRY  = var.default_expiry
    LINKISSUER_MAX_EXPIRY      = var.max_expiry
    LINKISSUER_SIGN_IN_FLIGHT  = tostring(var.sign_in_flight)
    LINKISSUER_LOG_LEVEL       = var.log_level
    # Cloud Run sends SIGKILL 10 s after SIGTERM.
    LINKISSUER_GRACE = "8s"
  })

  pull_env = {
    for k, v in local.inputs : k => merge(local.common_env, {
      LINKISSUER_SUBSCRIPTION = google_pubsub_subscription.work[k].name
    })
  }

  # The audience of push tokens: a fixed string rather than the service URL,
  # which is known only after the service exists (and the service's own
  # environment must name it).
  push_audience = "//run.googleapis.com/projects/${var.project_id}/locations/${var.region}/services/${local.names.service}"

  push_env = merge(local.common_env, {
    LINKISSUER_PUSH_EMAILS     = var.mode == "push" ? google_service_account.push[0].email : ""
    LINKISSUER_AUDIENCES       = local.push_audience
    LINKISSUER_HANDLER_TIMEOUT = "${var.push_ack_deadline_seconds - 10}s"
  })
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset(concat(
    ["pubsub.googleapis.com", "storage.googleapis.com", "iamcredentials.googleapis.com", "iam.googleapis.com"],
    var.audit ? ["bigquery.googleapis.com"] : [],
    var.mode == "gke" ? ["container.googleapis.com", "monitoring.googleapis.com"] : ["run.googleapis.com"],
  )) : toset([])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# The worker's identity, and its signing identity. No
# google_service_account_key anywhere: the org policy
# iam.disableServiceAccountKeyCreation can stay on.
resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = local.names.worker_account
  display_name = "linkissuer worker (keyless URL signing)"
  description  = "Signs URLs as itself through IAM signBlob; reads the source buckets; publishes links."

  depends_on = [google_project_service.apis]
}

# Keyless signing: signBlob as itself needs iam.serviceAccounts.signBlob on
# its own account, which roles/iam.serviceAccountTokenCreator grants. Bound
# on the account, not the project, so it cannot sign as anyone else.
resource "google_service_account_iam_member" "worker_signs_as_itself" {
  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.worker.member
}

resource "google_storage_bucket_iam_member" "source" {
  for_each = local.source_grants

  bucket = each.value.bucket
  role   = each.value.role
  member = google_service_account.worker.member
}

# Manifests and a job's state, all beside the manifest (jobs/layout.go).
# The job writer (jobs/finish.go, jobs/piece.go) creates objects: parts,
# done markers, the plan, the finish lock, CSV headers, composites and the
# manifest; reads them back (markers, plan, lock owner; compose also needs
# get on its sources); lists its done markers; composes; and deletes the
# parts, headers and composites after the final compose. It also replaces
# objects: a redelivered shard rewrites its part (no IfAbsent precondition),
# every finish attempt rewrites the CSV header, and a retried compose
# replaces its target. Replacing an object needs storage.objects.delete
# besides create, so create + get + list + delete: roles/storage.objectUser,
# the smallest predefined role with all four (objects only, nothing on the
# bucket itself). deploy/terraform_test.go checks these grants.
resource "google_storage_bucket_iam_member" "manifest" {
  for_each = var.manifest_bucket == "" ? toset([]) : toset(["roles/storage.objectUser"])

  bucket = var.manifest_bucket
  role   = each.value
  member = google_service_account.worker.member
}

# GKE: the Kubernetes service account of deploy/k8s acts as the worker's
# Google service account (it carries the iam.gke.io/gcp-service-account
# annotation).
resource "google_service_account_iam_member" "workload_identity" {
  count = var.mode == "gke" ? 1 : 0

  service_account_id = google_service_account.worker.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.gke_workload_identity.namespace}/${var.gke_workload_identity.service_account}]"
}

# GKE: KEDA's operator reads the subscription backlog from Managed
# Prometheus (deploy/k8s/keda) as this account.
resource "google_service_account" "keda" {
  count = var.mode == "gke" && var.keda_workload_identity != null ? 1 : 0

  project      = var.project_id
  account_id   = local.names.keda_account
  display_name = "KEDA operator (reads Pub/Sub backlog from Managed Prometheus)"

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "keda_monitoring_viewer" {
  count = length(google_service_account.keda)

  project = var.project_id
  role    = "roles/monitoring.viewer"
  member  = google_service_account.keda[0].member
}

resource "google_service_account_iam_member" "keda_workload_identity" {
  count = length(google_service_account.keda)

  service_account_id = google_service_account.keda[0].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.keda_workload_identity.namespace}/${var.keda_workload_identity.service_account}]"
}
