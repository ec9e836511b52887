-- Q2. Are accidents at night more severe, and does street lighting matter?
select
    lighting,
    sum(road_users) as road_users,
    round(100.0 * sum(hospitalised + killed) / sum(road_users), 1) as severe_pct,
    round(100.0 * sum(killed) / sum(road_users), 1) as killed_pct
from {{ ref('agg_severity_by_light_weather') }}
group by lighting_code, lighting
order by lighting_code
