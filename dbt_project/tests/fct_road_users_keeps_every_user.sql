-- No road user is lost between staging and the fact table (the joins are to one row each).
select staged, fact
from (select count(*) as staged from {{ ref('stg_users') }}),
     (select count(*) as fact from {{ ref('fct_road_users') }})
where staged <> fact
