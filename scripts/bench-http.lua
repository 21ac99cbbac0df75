-- wrk script for `cfa serve`: POSTs the approving reference signature to /v1/decisions.
-- Usage: cfa serve --port 18801 &
--        wrk -t1 -c32 -d10s --latency -s scripts/bench-http.lua http://127.0.0.1:18801/v1/decisions
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"domain":"fiscal","intent":"reconciliation_and_persist","target_layer":"silver","datasets":[{"name":"nfe","classification":"high_volume","size_gb":4000,"pii_columns":[],"partition_column":"processing_date","merge_keys":["nfe_id"]},{"name":"clientes","classification":"sensitive","size_gb":0.5,"pii_columns":["cpf","email"],"partition_column":"processing_date","merge_keys":["cliente_id"]}],"constraints":{"no_pii_raw":true,"merge_key_required":true,"enforce_types":true,"partition_by":["processing_date"],"max_cost_dbu":20.0,"custom":{}},"execution_context":{"policy_bundle_version":"prod-v1.0","catalog_snapshot_version":"cat-2026-01","context_registry_version_id":"v_initial"},"intent_id":"11111111-2222-3333-4444-555555555555","source_intent_raw":"Join NFe with Clientes and persist to Silver"}]]
