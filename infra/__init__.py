"""AWS CDK app for wabacast: one stack, one construct per capability (see infra/capabilities/)."""
