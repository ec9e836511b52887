-- One row per road user with their vehicle, the accident, the place, the calendar and the
-- split. Counts describe the accident (how many vehicles and people were involved), never
-- another user's outcome; so do the other parties (int_road_user_other_parties).
with users as (
    select * from {{ ref('stg_users') }}
),

vehicles as (
    select * from {{ ref('stg_vehicles') }}
),

accidents as (
    select * from {{ ref('stg_accidents') }}
),

places as (
    select * from {{ ref('stg_places') }}
),

calendar as (
    select * from {{ ref('int_accident_calendar') }}
),

locations as (
    select
        num_acc,
        latitude,
        longitude,
        coordinates_status
    from {{ ref('int_accident_locations') }}
),

other_parties as (
    select
        road_user_id,
        heaviest_other_vehicle_code,
        pedestrians_in_accident
    from {{ ref('int_road_user_other_parties') }}
),

splits as (
    select
        num_acc,
        split,
        is_latest_year
    from {{ ref('int_accident_splits') }}
),

vehicle_counts as (
    select
        num_acc,
        count(*) as vehicles_in_accident
    from vehicles
    group by num_acc
),

user_counts as (
    select
        num_acc,
        vehicle_id,
        count(*) as users_in_vehicle,
        sum(count(*)) over (partition by num_acc) as users_in_accident
    from users
    group by num_acc, vehicle_id
)

select
    users.road_user_id,
    users.num_acc,
    users.vehicle_id,
    splits.split,
    splits.is_latest_year,
    -- accident
    accidents.accident_year,
    accidents.month,
    accidents.day,
    accidents.accident_date,
    accidents.accident_at,
    accidents.hour,
    accidents.minute,
    calendar.day_of_week,
    calendar.is_weekend,
    calendar.is_public_holiday,
    calendar.holiday_name,
    calendar.is_holiday_eve,
    accidents.lighting_code,
    accidents.built_up_area_code,
    accidents.intersection_code,
    accidents.weather_code,
    accidents.collision_code,
    accidents.department_code,
    accidents.department_raw,
    accidents.commune_raw,
    accidents.address,
    accidents.gps_zone_code,
    locations.latitude,
    locations.longitude,
    locations.coordinates_status,
    -- place
    places.road_category_code,
    places.road_number,
    places.traffic_regime_code,
    places.lane_count,
    places.reserved_lane_code,
    places.road_profile_code,
    places.road_alignment_code,
    places.surface_condition_code,
    places.infrastructure_code,
    places.situation_code,
    places.school_proximity_code,
    -- vehicle
    vehicles.vehicle_category_code,
    vehicles.direction_code,
    vehicles.public_transport_occupants,
    vehicles.fixed_obstacle_code,
    vehicles.mobile_obstacle_code,
    vehicles.impact_point_code,
    vehicles.manoeuvre_code,
    vehicle_counts.vehicles_in_accident,
    user_counts.users_in_vehicle,
    cast(user_counts.users_in_accident as integer) as users_in_accident,
    other_parties.pedestrians_in_accident,
    other_parties.heaviest_other_vehicle_code,
    -- road user
    users.seat_position_code,
    users.user_category_code,
    users.sex_code,
    users.birth_year,
    users.age,
    users.trip_purpose_code,
    users.secu_raw,
    users.safety_equipment_code,
    users.safety_equipment_use_code,
    users.pedestrian_location_code,
    users.pedestrian_action_code,
    users.pedestrian_company_code,
    -- target
    users.grav,
    users.severity
from users
inner join accidents on users.num_acc = accidents.num_acc
inner join splits on users.num_acc = splits.num_acc
inner join locations on users.num_acc = locations.num_acc
left join calendar on users.num_acc = calendar.num_acc
left join places on users.num_acc = places.num_acc
left join vehicles on users.num_acc = vehicles.num_acc and users.vehicle_id = vehicles.vehicle_id
left join vehicle_counts on users.num_acc = vehicle_counts.num_acc
left join user_counts on users.num_acc = user_counts.num_acc and users.vehicle_id = user_counts.vehicle_id
left join other_parties on users.road_user_id = other_parties.road_user_id
