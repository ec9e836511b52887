-- Severity by road-user category and safety equipment (and whether it was used).
select
    user_category_code,
    user_category,
    safety_equipment_code,
    safety_equipment,
    safety_equipment_use_code,
    safety_equipment_use,
    {{ severity_measures() }}
from {{ ref('fct_road_users') }}
group by
    user_category_code,
    user_category,
    safety_equipment_code,
    safety_equipment,
    safety_equipment_use_code,
    safety_equipment_use
