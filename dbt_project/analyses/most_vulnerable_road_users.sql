-- Q3. Which road users are most often hospitalised or killed? By user category and vehicle
-- category, for groups of at least 100 road users.
select
    user_category,
    vehicle_category,
    count(*) as road_users,
    round(100.0 * avg(case when is_severe then 1 else 0 end), 1) as severe_pct
from {{ ref('fct_road_users') }}
group by user_category, vehicle_category
having count(*) >= 100
order by severe_pct desc
limit 5
