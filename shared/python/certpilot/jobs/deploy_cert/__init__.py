"""deploy-cert: plan (pure), apply, verify and roll back one certificate's rollout."""
