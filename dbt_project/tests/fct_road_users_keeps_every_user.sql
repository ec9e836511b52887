-- No road user is lost between staging and the fact table (the joins are to one row each).
-- Shown in Dagster as a check of fct_road_users (a test with two parents needs telling).
{{ config(meta={'dagster': {'ref': {'name': 'fct_road_users'}}}) }}
with staged as (
    select count(*) as road_users from {{ ref('stg_users') }}
),

fact as (
    select count(*) as road_users from {{ ref('fct_road_users') }}
)

select
    staged.road_users as staged_road_users,
    fact.road_users as fact_road_users
from staged
cross join fact
where staged.road_users <> fact.road_users
