-- A pedestrian's location, action and company are never "not applicable (not a
-- pedestrian)": a 0 there means not recorded, which staging turns into NULL.
select
    road_user_id,
    user_category_code,
    pedestrian_location_code,
    pedestrian_action_code,
    pedestrian_company_code
from {{ ref('stg_users') }}
where
    user_category_code in (3, 4)
    and 0 in (pedestrian_location_code, pedestrian_action_code, pedestrian_company_code)
