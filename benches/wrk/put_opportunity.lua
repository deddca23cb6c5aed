-- wrk script: PUT /v1/opportunities/{id} with a realistic body; ids cycle over 100k so the mix is
-- inserts first, then replaces. Set the key with: KEY=ds_... wrk -s put_opportunity.lua ...
local counter = 0
local key = os.getenv("KEY") or ""
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter = tid * 1000000
end

request = function()
  counter = counter + 1
  local id = "bench-" .. (counter % 100000) .. "-" .. tid
  local amount = (counter % 997) * 113.5
  local body = string.format(
    '{"name":"Deal %d","account":"Acct %d","sector":"software","region":"EMEA","owner":"rep-%d",' ..
    '"contact_role":"champion","amount":%.1f,"status":"open","created_at":"2026-09-01",' ..
    '"interaction_count":%d,"response_hours":%.1f,"attributes":{"lead_source":"web"}}',
    counter, counter % 500, counter % 30, amount, counter % 20, (counter % 48) + 0.5)
  return wrk.format("PUT", "/v1/opportunities/" .. id,
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end
