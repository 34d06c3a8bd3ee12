# The Google Cloud side of deploy/k8s: topics, pull subscriptions, the
# worker's service account with its keyless-signing grant, and the Workload
# Identity bindings for the worker's and KEDA's Kubernetes service accounts.
# The cluster itself (with Workload Identity and Managed Prometheus on, the
# GKE defaults) is yours.
#
#   terraform apply -var project_id=my-project -var bucket=my-uploads
#   kubectl apply -k deploy/k8s/keda    # or deploy/k8s/hpa, not both

terraform {
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.38.0, < 8.0.0"
    }
  }
}

variable "project_id" {
  type = string
}

variable "region" {
  type    = string
  default = "us-central1"
}

variable "bucket" {
  description = "Existing bucket whose new objects get links."
  type        = string
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "linkissuer" {
  source = "../../modules/linkissuer"

  project_id = var.project_id
  region     = var.region
  mode       = "gke"
  # Not run by Terraform in gke mode; deploy/k8s names the image.
  image = "unused"

  sources = [{ bucket = var.bucket }]

  # Must match deploy/k8s: the keda overlay scales linkissuer-objects to 3
  # replicas and linkissuer-jobs to 1, each capped at 250 signBlob/s.
  max_instances  = 3
  jobs_instances = 1

  gke_workload_identity = {
    namespace       = "linkissuer"
    service_account = "linkissuer"
  }
}

output "worker_env" {
  description = "What deploy/k8s/base/configmap.yaml should say."
  value       = module.linkissuer.worker_env
}

output "keda_service_account_email" {
  value = module.linkissuer.keda_service_account_email
}
