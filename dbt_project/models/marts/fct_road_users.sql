-- The analysis-ready fact table: one row per road user, every code with its English label.
with road_users as (
    select * from {{ ref('int_road_users_enriched') }}
),

label_maps as (
    {{ code_label_maps() }}
),

labelled as (
    select
        road_users.*,
        label_maps.*
    from road_users
    cross join label_maps
)

select
    road_user_id,
    num_acc,
    vehicle_id,
    split,
    is_latest_year,
    -- when
    accident_year,
    month,
    day,
    accident_date,
    accident_at,
    hour,
    minute,
    day_of_week,
    is_weekend,
    is_public_holiday,
    holiday_name,
    is_holiday_eve,
    -- conditions
    lighting_code,
    {{ code_label('lighting_code') }} as lighting,
    built_up_area_code,
    {{ code_label('built_up_area_code') }} as built_up_area,
    intersection_code,
    {{ code_label('intersection_code') }} as intersection,
    weather_code,
    {{ code_label('weather_code') }} as weather,
    collision_code,
    {{ code_label('collision_code') }} as collision,
    -- where
    department_code,
    {{ code_label('department_raw', codebook_code('department_raw')) }} as department,
    commune_raw,
    address,
    gps_zone_code,
    latitude,
    longitude,
    coordinates_status,
    road_category_code,
    {{ code_label('road_category_code') }} as road_category,
    road_number,
    traffic_regime_code,
    {{ code_label('traffic_regime_code') }} as traffic_regime,
    lane_count,
    reserved_lane_code,
    {{ code_label('reserved_lane_code') }} as reserved_lane,
    road_profile_code,
    {{ code_label('road_profile_code') }} as road_profile,
    road_alignment_code,
    {{ code_label('road_alignment_code') }} as road_alignment,
    surface_condition_code,
    {{ code_label('surface_condition_code') }} as surface_condition,
    infrastructure_code,
    {{ code_label('infrastructure_code') }} as infrastructure,
    situation_code,
    {{ code_label('situation_code') }} as situation,
    school_proximity_code,
    -- vehicle
    vehicle_category_code,
    {{ code_label('vehicle_category_code') }} as vehicle_category,
    direction_code,
    public_transport_occupants,
    fixed_obstacle_code,
    {{ code_label('fixed_obstacle_code') }} as fixed_obstacle,
    mobile_obstacle_code,
    {{ code_label('mobile_obstacle_code') }} as mobile_obstacle,
    impact_point_code,
    {{ code_label('impact_point_code') }} as impact_point,
    manoeuvre_code,
    {{ code_label('manoeuvre_code') }} as manoeuvre,
    vehicles_in_accident,
    users_in_vehicle,
    users_in_accident,
    -- road user
    seat_position_code,
    {{ code_label('seat_position_code') }} as seat_position,
    user_category_code,
    {{ code_label('user_category_code') }} as user_category,
    sex_code,
    {{ code_label('sex_code') }} as sex,
    birth_year,
    age,
    trip_purpose_code,
    {{ code_label('trip_purpose_code') }} as trip_purpose,
    secu_raw,
    safety_equipment_code,
    {{ code_label('safety_equipment_code') }} as safety_equipment,
    safety_equipment_use_code,
    {{ code_label('safety_equipment_use_code') }} as safety_equipment_use,
    pedestrian_location_code,
    {{ code_label('pedestrian_location_code') }} as pedestrian_location,
    pedestrian_action_code,
    {{ code_label('pedestrian_action_code') }} as pedestrian_action,
    pedestrian_company_code,
    -- outcome
    grav,
    severity,
    {{ code_label('severity') }} as severity_label,
    {{ is_severe('severity') }} as is_severe
from labelled
