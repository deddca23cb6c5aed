-- wrk script: POST /v1/score with one realistic opportunity. KEY=ds_... wrk -s score_one.lua ...
local key = os.getenv("KEY") or ""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.body = '{"sector":"software","region":"DACH","contact_role":"end_user","amount":40000,' ..
  '"cycle_days":30,"interaction_count":3,"response_hours":40,"attributes":{"lead_source":"partner","competitors":2}}'
