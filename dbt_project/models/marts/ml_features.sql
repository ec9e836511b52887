-- Exactly what the severity model trains on: the features, the accident key, the target and
-- the split. The column list is the feature specification (ml/features.py reads this model's
-- YAML), and the contract enforces names and types.
select
    num_acc,
    split,
    severity,
    -- accident: when
    month,
    hour,
    cast(day_of_week as integer) as day_of_week,
    cast(is_weekend as integer) as is_weekend,
    cast(is_public_holiday as integer) as is_public_holiday,
    cast(is_holiday_eve as integer) as is_holiday_eve,
    -- accident: conditions and place
    lighting_code,
    built_up_area_code,
    intersection_code,
    weather_code,
    collision_code,
    latitude,
    longitude,
    road_category_code,
    traffic_regime_code,
    lane_count,
    reserved_lane_code,
    road_profile_code,
    road_alignment_code,
    surface_condition_code,
    infrastructure_code,
    situation_code,
    -- vehicle
    vehicle_category_code,
    fixed_obstacle_code,
    mobile_obstacle_code,
    impact_point_code,
    manoeuvre_code,
    cast(vehicles_in_accident as integer) as vehicles_in_accident,
    cast(users_in_vehicle as integer) as users_in_vehicle,
    users_in_accident,
    -- the other parties (feature set 2, issue 12)
    pedestrians_in_accident,
    heaviest_other_vehicle_code,
    -- road user
    seat_position_code,
    user_category_code,
    sex_code,
    age,
    trip_purpose_code,
    safety_equipment_code,
    safety_equipment_use_code,
    pedestrian_location_code,
    pedestrian_action_code
from {{ ref('fct_road_users') }}
