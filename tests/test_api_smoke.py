def test_health_check(api):
    response = api.get("/api/health-check")
    assert response.status_code == 200
    assert response.json() == {"success": True}


def test_list_groups_costs_one_dynamodb_call_at_steady_state(api):
    assert api.get("/api/message_groups", "andrewbrown").status_code == 200  # warm the caches
    before = api.metrics()
    assert api.get("/api/message_groups", "andrewbrown").status_code == 200
    after = api.metrics()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert delta.get("dynamodb_calls", 0) == 1
    assert delta.get("pg_queries", 0) == 0
    assert delta.get("jwks_fetches", 0) == 0
