terraform {
  # optional() object attributes with defaults, and validation blocks that
  # name other variables, need Terraform 1.9.
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # google_cloud_run_v2_worker_pool is in the GA provider from 6.38;
      # invoker_iam_disabled on google_cloud_run_v2_service before that.
      version = ">= 6.38.0, < 8.0.0"
    }
  }
}
