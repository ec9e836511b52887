-- Q1. How much more often are car occupants hospitalised or killed when the seat belt was not
-- used? Light-vehicle (catv 7) drivers and passengers whose belt use was recorded.
select
    safety_equipment_use as seat_belt,
    count(*) as road_users,
    round(100.0 * avg(case when is_severe then 1 else 0 end), 1) as severe_pct,
    round(100.0 * avg(case when severity = 4 then 1 else 0 end), 1) as killed_pct
from {{ ref('fct_road_users') }}
where
    vehicle_category_code = 7
    and user_category_code in (1, 2)
    and safety_equipment_code = 1
    and safety_equipment_use_code in (1, 2)
group by safety_equipment_use
order by severe_pct desc
